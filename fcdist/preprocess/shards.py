"""``fcdist preprocess``: one shard of rows -> validated, split, tokenized, packed Arrow rows on disk.

Run before training so no training rank tokenizes while the others wait on a collective. Each shard is a
contiguous slice of the rows, written to ``<out>/shard-<i>-of-<N>/`` through a temporary folder that is
renamed only when complete (so a killed task never leaves a shard that looks done). When every shard of
N is complete, ``<out>/manifest.json`` records them, the totals and the fingerprint that training checks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import time
from collections import Counter
from pathlib import Path

from fcdist.atomic import replace_dir, write_text_atomic
from fcdist.config import JobConfig, add_config_arguments, load_config
from fcdist.data.xlam import BadRowError, SkipReport, is_heldout, load_raw, max_row_chars, parse_row
from fcdist.preprocess.fingerprint import differing_keys, fingerprint_components, fingerprint_hash, sha256_file
from fcdist.preprocess.packing import PackStats, length_summary, pack_documents
from fcdist.preprocess.tokenize import tokenize_rows
from fcdist.runtime import array_shard, load_tokenizer

MARKER = "COMPLETE.json"
MANIFEST = "manifest.json"
HELDOUT = "heldout.jsonl"
DUPLICATE_ID = "duplicate id (an earlier row has the same id)"
# PackStats counts recorded in each shard's marker and summed in the manifest
COUNTED_STATS = ("truncated", "partial_loss", "dropped", "dropped_no_loss", "tokens", "loss_tokens", "loss_tokens_lost")
LOSS_WARNING_SHARE = 0.01  # warn when more documents than this lose loss tokens to max_length


def shard_name(index: int, num_shards: int) -> str:
    return f"shard-{index}-of-{num_shards}"


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _process_batch(batch: dict, *, source: str, tokenizer, config: JobConfig) -> dict:
    """Validate, split and tokenize a batch of raw rows; bad rows are flagged here and judged by the caller."""
    size = len(batch["id"])
    out = {"row_id": [str(i) for i in batch["id"]], "bad": [""] * size, "heldout": [False] * size,
           "input_ids": [[] for _ in range(size)], "labels": [[] for _ in range(size)]}
    to_train = []
    for i in range(size):
        try:
            row = parse_row({key: values[i] for key, values in batch.items()}, source, max_row_chars(config.data.max_length))
        except BadRowError as e:
            out["bad"][i] = e.reason
            continue
        out["heldout"][i] = is_heldout(row.id, config.data.heldout_fraction)
        if not out["heldout"][i]:  # held-out rows are kept raw for inference, never tokenized for training
            to_train.append((i, row))
    docs = tokenize_rows([row for _, row in to_train], tokenizer, config.data.template, config.data.train_on)
    for (i, _), doc in zip(to_train, docs):
        out["input_ids"][i], out["labels"][i] = doc.input_ids, doc.labels
    return out


def shard_bounds(num_rows: int, index: int, num_shards: int) -> tuple[int, int]:
    """[start, end) of shard ``index``: contiguous slices of near-equal size, the first ones one row longer."""
    size, extra = divmod(num_rows, num_shards)
    start = index * size + min(index, extra)
    return start, start + size + (index < extra)


def find_duplicate_ids(all_ids: list, start: int, end: int) -> dict[int, int]:
    """Position -> position of the first row with the same id, for rows in [start, end) whose id occurred
    earlier in the whole source. Every shard reads the whole id column, so all shards agree without talking:
    the first row with an id is kept, the later ones are duplicates wherever they are."""
    first_seen: dict[str, int] = {}
    duplicates = {}
    for position, row_id in enumerate(all_ids[:end]):
        if row_id is None:  # a missing id is a bad row of its own, reported by validation
            continue
        first = first_seen.setdefault(str(row_id), position)
        if first != position and position >= start:
            duplicates[position] = first
    return duplicates


def apply_duplicate_policy(raw, start: int, end: int, config: JobConfig, report: SkipReport) -> list[int]:
    """The positions in [start, end) to process: ``error`` raises at the first duplicate id (naming both rows),
    ``skip`` counts each under its own reason. Ids key predictions and scores, so they must be unique."""
    duplicates = find_duplicate_ids(raw["id"], start, end)
    for position, first in duplicates.items():
        row_id = raw[position]["id"]
        if config.data.on_bad_row == "error":
            raise BadRowError(config.data.source, row_id, f"duplicate id: rows {first} and {position} (counting from 0) "
                                                          "have the same id, which must be unique (predictions are keyed by id)")
        report.add(BadRowError(config.data.source, row_id, DUPLICATE_ID))
    return [position for position in range(start, end) if position not in duplicates]


def apply_bad_row_policy(processed, raw_slice, config: JobConfig, report: SkipReport) -> None:
    """``error``: raise for the first bad row (nothing has been written yet); ``skip``: count them."""
    for index, reason in enumerate(processed["bad"]):
        if not reason:
            continue
        report.apply(BadRowError(config.data.source, raw_slice[index]["id"], reason), config.data.on_bad_row)


def write_heldout(raw_slice, processed, path: Path) -> int:
    """The held-out rows, unchanged (xlam format), for inference and as the scoring gold."""
    indices = [i for i, (held, bad) in enumerate(zip(processed["heldout"], processed["bad"])) if held and not bad]
    with open(path, "w") as f:
        for i in indices:
            f.write(json.dumps(raw_slice[i], ensure_ascii=False) + "\n")
    return len(indices)


def refuse_if_nothing_fits(stats: PackStats, config: JobConfig, name: str) -> None:
    """A max_length below every prompt would pack nothing to learn from (and train at loss 0.0): stop here."""
    if stats.documents and not stats.kept:
        raise ValueError(f"{config.data.source}: data.max_length={config.data.max_length} leaves none of the "
                         f"{stats.documents} documents of {name} with a token to train on (overlong: {config.data.overlong}); "
                         "raise data.max_length")


def build_shard(config: JobConfig, tokenizer, index: int, num_shards: int, components: dict, tmp_dir: Path) -> dict:
    """Do the work of one shard into ``tmp_dir``; returns the completion marker's contents."""
    name = shard_name(index, num_shards)
    raw = load_raw(config.data.source, config.data.revision, config.data.split)
    start, end = shard_bounds(len(raw), index, num_shards)
    skips = SkipReport()
    raw_slice = raw.select(apply_duplicate_policy(raw, start, end, config, skips))
    num_proc = config.data.num_proc or available_cores()
    processed = raw_slice.map(
        _process_batch,
        batched=True,
        batch_size=256,
        num_proc=num_proc if len(raw_slice) >= 1024 and num_proc > 1 else None,
        remove_columns=raw_slice.column_names,
        fn_kwargs={"source": config.data.source, "tokenizer": tokenizer, "config": config},
        desc=f"tokenize {name}",
        load_from_cache_file=False,  # datasets' cache key misses changes inside fcdist's tokenizing code
    )
    apply_bad_row_policy(processed, raw_slice, config, skips)
    if skips.skipped:
        print(f"{name}: {skips.summary()}", file=sys.stderr)

    heldout_count = write_heldout(raw_slice, processed, tmp_dir / HELDOUT)
    train = processed.filter(lambda bad, held: not bad and not held, input_columns=["bad", "heldout"],
                             load_from_cache_file=False)
    docs = list(zip(train["input_ids"], train["labels"]))
    rows, stats = pack_documents(docs, config.data.max_length, config.data.overlong, config.data.packing)
    refuse_if_nothing_fits(stats, config, name)
    rows.save_to_disk(str(tmp_dir / "data"))
    return {
        "shard": name,
        "fingerprint": fingerprint_hash(components),
        "rows_in": end - start,
        "rows_kept": stats.kept,
        "skipped": skips.skipped,
        "skip_reasons": dict(skips.reasons),
        "heldout": heldout_count,
        **{key: getattr(stats, key) for key in COUNTED_STATS},
        "packed_rows": stats.rows,
        "packing_efficiency": round(stats.efficiency, 6),
        "doc_length_counts": dict(sorted(Counter(len(ids) for ids, _ in docs).items())),
        "checksum": data_checksum(tmp_dir / "data"),
    }


def data_checksum(data_dir: Path) -> str:
    """Hash of the Arrow files' hashes, to detect a shard changed or damaged after it was written."""
    import hashlib

    files = sorted(p for p in data_dir.iterdir() if p.suffix == ".arrow")
    return hashlib.sha256("".join(sha256_file(p) for p in files).encode()).hexdigest()


def read_marker(shard_dir: Path) -> dict | None:
    marker = shard_dir / MARKER
    return json.loads(marker.read_text()) if marker.is_file() else None


def preprocess_shard(config: JobConfig, index: int, num_shards: int, tokenizer=None) -> Path:
    """Write one complete shard (or keep the existing one if its fingerprint matches); returns its folder."""
    if not 0 <= index < num_shards:
        raise ValueError(f"--shard {index} is out of range for --num-shards {num_shards}")
    tokenizer = tokenizer or load_tokenizer(config)
    components = fingerprint_components(config, tokenizer)
    out = config.packed_dir
    remove_stale_tmp(out)
    final = out / shard_name(index, num_shards)
    marker = read_marker(final)
    if marker and marker["fingerprint"] == fingerprint_hash(components):
        print(f"{final}: complete with the same fingerprint, skipped")
        return final

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{final.name}.tmp-{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        started = time.time()
        marker = build_shard(config, tokenizer, index, num_shards, components, tmp)
        marker["seconds"] = round(time.time() - started, 3)
        (tmp / MARKER).write_text(json.dumps(marker, indent=2))
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{final}: {marker['rows_in']} rows in, {marker['rows_kept']} kept, {marker['heldout']} held out, "
          f"{marker['skipped']} skipped, {marker['packed_rows']} packed rows, efficiency {marker['packing_efficiency']:.3f}")
    report_lengths(marker, length_summary(counts_of(marker), config.data.max_length), config)
    return final


def remove_stale_tmp(out: Path) -> None:
    """Remove the ``.shard-*.tmp-<host>-<pid>`` folders of preprocess runs on this host that are dead (killed);
    a folder without a host is from before hosts were recorded and counts as this host's. Another host's
    processes cannot be checked from here, so their folders stay."""
    host, removed = socket.gethostname(), []
    for folder in sorted(out.glob(".shard-*.tmp-*")):
        owner_host, _, pid = folder.name.rpartition(".tmp-")[2].rpartition("-")
        if owner_host in (host, "") and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    if removed:
        print(f"{out}: removed {len(removed)} folder(s) left by killed preprocess runs: {', '.join(removed)}", file=sys.stderr)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def counts_of(marker: dict) -> Counter:
    """A marker's document-length histogram (JSON keys are strings)."""
    return Counter({int(length): count for length, count in marker["doc_length_counts"].items()})


def report_lengths(counts: dict, lengths: dict, config: JobConfig) -> None:
    """Print the length distribution against max_length and what it cost; warn when it costs too much."""
    m = config.data.max_length
    print(f"  {lengths['documents']} documents to train on: {lengths['share_over']:.1%} over data.max_length={m} "
          f"(p50 {lengths['p50']}, p90 {lengths['p90']}, max {lengths['max']} tokens); {counts['truncated']} truncated, "
          f"{counts['dropped_no_loss']} dropped with no loss token left, {counts['dropped']} dropped as overlong; "
          f"{counts['loss_tokens']} loss tokens in the shards, {counts['loss_tokens_lost']} lost to max_length")
    losing = counts["partial_loss"] + counts["dropped"] + counts["dropped_no_loss"]
    if lengths["documents"] and losing / lengths["documents"] > LOSS_WARNING_SHARE:
        print(f"warning: {losing} of {lengths['documents']} documents ({losing / lengths['documents']:.1%}) lose loss "
              f"tokens to data.max_length={m}; raise data.max_length (to at least {lengths['max']} to keep every one; "
              "with packing a longer row costs little padding)", file=sys.stderr)


def write_manifest(config: JobConfig, num_shards: int, tokenizer=None) -> Path:
    """Record all N complete shards; refuses (naming them) if any is missing, stale or damaged."""
    tokenizer = tokenizer or load_tokenizer(config)
    components = fingerprint_components(config, tokenizer)
    out = config.packed_dir
    markers, problems = [], []
    for index in range(num_shards):
        shard_dir = out / shard_name(index, num_shards)
        marker = read_marker(shard_dir)
        if marker is None:
            problems.append(f"{shard_dir.name} is missing or incomplete")
        elif marker["fingerprint"] != fingerprint_hash(components):
            problems.append(f"{shard_dir.name} was made with other settings (fingerprint {marker['fingerprint']})")
        elif data_checksum(shard_dir / "data") != marker["checksum"]:
            problems.append(f"{shard_dir.name} changed after it was written (checksum mismatch)")
        else:
            markers.append(marker)
    if problems:
        raise RuntimeError(f"{out}: cannot write the manifest: " + "; ".join(problems))

    write_text_atomic(out / HELDOUT, "".join((out / shard_name(i, num_shards) / HELDOUT).read_text() for i in range(num_shards)))

    totals = {key: sum(m[key] for m in markers) for key in
              ("rows_in", "rows_kept", "skipped", "heldout", *COUNTED_STATS, "packed_rows")}
    lengths = length_summary(sum((counts_of(m) for m in markers), Counter()), config.data.max_length)
    manifest = {
        "fingerprint": fingerprint_hash(components),
        "fingerprint_components": components,
        "num_shards": num_shards,
        "max_length": config.data.max_length,
        "packing": config.data.packing,
        "shards": markers,
        "totals": totals,
        "lengths": lengths,
        "packing_efficiency": round(totals["tokens"] / (totals["packed_rows"] * config.data.max_length or 1), 6),
        "heldout_file": HELDOUT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2))
    print(f"{out / MANIFEST}: {num_shards} shard(s), {totals['packed_rows']} packed rows, "
          f"efficiency {manifest['packing_efficiency']:.3f}")
    report_lengths(totals, lengths, config)
    return out / MANIFEST


def all_shards_complete(config: JobConfig, num_shards: int, tokenizer) -> bool:
    """Every shard of N has a marker made with this config's fingerprint (so the manifest can be written)."""
    expected = fingerprint_hash(fingerprint_components(config, tokenizer))
    markers = [read_marker(config.packed_dir / shard_name(i, num_shards)) for i in range(num_shards)]
    return all(m and m["fingerprint"] == expected for m in markers)


def check_manifest(config: JobConfig, tokenizer) -> dict:
    """Training's guard: the manifest must exist and match this config, else name what differs."""
    path = config.packed_dir / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; run `fcdist preprocess --config ...` first")
    manifest = json.loads(path.read_text())
    expected = fingerprint_components(config, tokenizer)
    differing = differing_keys(expected, manifest["fingerprint_components"])
    if differing:
        detail = ", ".join(f"{k} (config: {expected.get(k)!r}, manifest: {manifest['fingerprint_components'].get(k)!r})"
                           for k in differing)
        raise ValueError(f"{path}: the packed data was made with other settings: {detail}; rerun fcdist preprocess")
    return manifest


def shard_args(args: argparse.Namespace, config: JobConfig) -> tuple[int | None, int]:
    """(shard, count): --shard, else this SLURM array task's shard (fcdist.runtime.array_shard, the rule infer
    follows too), else None for every shard; the count is --num-shards, else the array's, else data.num_shards."""
    from_array = array_shard(args.num_shards) if args.shard is None else None
    return from_array or (args.shard, args.num_shards or config.data.num_shards)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist preprocess",
        usage="fcdist preprocess --config C [--shard I --num-shards N | --finalize] [key=value ...]",
        description="Tokenize and pack xlam rows into Arrow shards plus a manifest.",
    )
    add_config_arguments(parser)
    parser.add_argument("--shard", type=int, help="shard index (default: the SLURM array task's, else all shards)")
    parser.add_argument("--num-shards", type=int, help="number of shards (default: the SLURM array's size, else data.num_shards)")
    parser.add_argument("--finalize", action="store_true", help="only write the manifest from complete shards")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_config(args.config, args.overrides)
    shard, num_shards = shard_args(args, config)
    tokenizer = load_tokenizer(config)
    if not args.finalize:
        for index in [shard] if shard is not None else range(num_shards):
            preprocess_shard(config, index, num_shards, tokenizer)
    if args.finalize or all_shards_complete(config, num_shards, tokenizer):
        write_manifest(config, num_shards, tokenizer)
    return 0
