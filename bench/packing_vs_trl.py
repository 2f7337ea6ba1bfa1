"""Benchmark (not a test): fcdist's packer against TRL's ``pack_dataset`` on the same tokenized documents.

    python bench/packing_vs_trl.py [--rows 60000] [--max-length 512] [--real] [--real-max-length 1280 512]

Documents: --rows synthetic rows (fcdist.data.synth, seed 1) tokenized as preprocessing does (seed template,
loss on the completion) with the tiny tokenizer; with --real also the 67 real xLAM rows in
/work/shared/real/xlam-sample.jsonl with the real Phi-3 tokenizer, at each --real-max-length.
Packers: fcdist (pack_documents, overlong: truncate: fcdist's overlong handling and counts, then TRL's bfd over
the whole shard, then position_ids); TRL bfd as SFTTrainer runs it (datasets.map batches of 1000 documents);
TRL bfd over the whole shard (batch_size=None); TRL bfd_split over the whole shard. The hand-written packer
fcdist had before is measured by this script at commit 989f5e4 (numbers in fcdist/preprocess/packing.py).
Training on the rows is measured apart: the CPU demo with either packer and three shuffle seeds,
bench/results/demo-cpu-orderings-2026-12-01.md.

Columns: rows; efficiency (packed tokens / (rows * max_length)); split documents (documents whose tokens lie
in more than one row); cut (documents truncated, losing tokens); loss tokens (labels != -100 in the rows: a
truncated document that keeps none is still packed by TRL and only adds tokens nothing is trained on);
same twice (a second run gives identical rows); seconds (median of 3, from the tokenized documents to the packed
Arrow table a shard saves: fcdist's pack_documents; TRL is given the Arrow dataset a shard
already holds, and its table has seq_lengths but no position_ids, which fcdist's trainer reads).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a plain checkout
REAL_ROWS = Path("/work/shared/real/xlam-sample.jsonl")
REAL_TOKENIZER = Path("/work/shared/real/phi3-tokenizer")
IGNORE_INDEX = -100


def tokenized(raws: list[dict], tokenizer) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per row, as fcdist preprocess makes them (seed template, loss on the completion)."""
    from fcdist.data.xlam import parse_rows
    from fcdist.preprocess.tokenize import tokenize_rows

    rows, _ = parse_rows(raws, "bench", "skip")  # as preprocess's on_bad_row: skip
    return [(d.input_ids, d.labels) for d in tokenize_rows(rows, tokenizer, "seed", "completion")]


def synthetic_docs(num_rows: int) -> list[tuple[list[int], list[int]]]:
    from fcdist.data.synth import generate_rows
    from fcdist.model.tiny import rendered_texts, train_tokenizer

    tokenizer = train_tokenizer(rendered_texts(generate_rows(2000, 0)))  # the tiny model's tokenizer
    return tokenized(generate_rows(num_rows, 1), tokenizer)


def real_docs() -> list[tuple[list[int], list[int]]]:
    import json

    from transformers import AutoTokenizer

    raws = [json.loads(line) for line in REAL_ROWS.read_text().splitlines() if line.strip()]
    return tokenized(raws, AutoTokenizer.from_pretrained(str(REAL_TOKENIZER)))


def timed(fn, repeats: int = 3):
    """(result of the last call, median seconds)."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return result, statistics.median(seconds)


def as_dataset(docs):
    import datasets

    return datasets.Dataset.from_dict({"input_ids": [ids for ids, _ in docs], "labels": [labels for _, labels in docs]})


def fcdist_packer(docs, max_length: int):
    """pack_documents: the Arrow table build_shard saves (TRL's packers return one too)."""
    from fcdist.preprocess.packing import pack_documents

    rows, _ = pack_documents(docs, max_length, "truncate", packing=True)
    return rows.rename_column("doc_lengths", "seq_lengths")


def trl_packer(strategy: str, batch_size: int | None):
    def pack(dataset, max_length: int):
        from trl.data_utils import pack_dataset

        return pack_dataset(dataset, max_length, strategy, map_kwargs={"batch_size": batch_size})
    return pack


def rows_of(packed) -> list[tuple]:
    """(input_ids, labels, per-document lengths) of each packed row, as Python lists (outside the timing)."""
    return list(zip(packed["input_ids"], packed["labels"], packed["seq_lengths"]))


# name: (what the packer is given, built outside the timing; the packer). TRL is given an Arrow dataset.
PACKERS = {
    "fcdist": (list, fcdist_packer),
    "trl bfd (batches of 1000)": (as_dataset, trl_packer("bfd", 1000)),
    "trl bfd (whole shard)": (as_dataset, trl_packer("bfd", None)),
    "trl bfd_split (whole shard)": (as_dataset, trl_packer("bfd_split", None)),
}


def document_ids(docs) -> tuple[list[list[int]], int]:
    """Every token's (document, position) tagged as one id: doc * stride + position, unique across the shard.

    Packed in place of input_ids, it shows where each document's tokens went (and their order).
    """
    stride = max(len(ids) for ids, _ in docs) + 1
    return [[d * stride + t for t in range(len(ids))] for d, (ids, _) in enumerate(docs)], stride


def where_documents_went(docs, packer_name: str, max_length: int):
    """(split, cut, dropped) documents: packed with ids replaced by (document, position) tags."""
    tagged, stride = document_ids(docs)
    tagged_docs = [(tags, labels) for tags, (_, labels) in zip(tagged, docs)]
    prepare, pack = PACKERS[packer_name]
    rows = rows_of(pack(prepare(tagged_docs), max_length))
    rows_with, tokens_of = {}, {}
    for r, (tags, _, _) in enumerate(rows):
        for tag in tags:
            doc = tag // stride
            rows_with.setdefault(doc, set()).add(r)
            tokens_of[doc] = tokens_of.get(doc, 0) + 1
    split = sum(len(r) > 1 for r in rows_with.values())
    cut = sum(0 < tokens_of.get(d, 0) < len(ids) for d, (ids, _) in enumerate(docs))
    return split, cut, len(docs) - len(tokens_of)


def check_rows(rows, max_length: int) -> None:
    """Per-document lengths add up to each row, and no row is longer than max_length."""
    for ids, labels, lengths in rows:
        assert len(ids) == len(labels) == sum(lengths) <= max_length, "row bookkeeping is inconsistent"


def measure(name: str, docs, max_length: int) -> dict:
    prepare, pack = PACKERS[name]
    given = prepare(docs)
    packed, seconds = timed(lambda: pack(given, max_length))
    rows, again = rows_of(packed), rows_of(pack(given, max_length))
    check_rows(rows, max_length)
    split, cut, dropped = where_documents_went(docs, name, max_length)
    tokens = sum(len(ids) for ids, _, _ in rows)
    return {"packer": name, "rows": len(rows), "efficiency": tokens / (len(rows) * max_length), "split": split,
            "cut": cut, "dropped": dropped,
            "no_loss_rows": sum(all(label == IGNORE_INDEX for label in labels) for _, labels, _ in rows),
            "loss": sum(label != IGNORE_INDEX for _, labels, _ in rows for label in labels),
            "same": rows == again, "seconds": seconds}


def print_table(title: str, docs, max_length: int) -> None:
    over = sum(len(ids) > max_length for ids, _ in docs)
    print(f"\n{title}: {len(docs)} documents, max_length {max_length}, {over} longer than max_length")
    print(f"{'packer':<30} {'rows':>6} {'efficiency':>10} {'split docs':>10} {'cut':>5} {'dropped':>7} "
          f"{'no-loss rows':>12} {'loss tokens':>11} {'same twice':>10} {'seconds':>8}")
    for name in PACKERS:
        m = measure(name, docs, max_length)
        print(f"{m['packer']:<30} {m['rows']:>6} {m['efficiency']:>10.4f} {m['split']:>10} {m['cut']:>5} "
              f"{m['dropped']:>7} {m['no_loss_rows']:>12} {m['loss']:>11} {str(m['same']):>10} {m['seconds']:>8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        usage="python bench/packing_vs_trl.py [--rows N] [--max-length L] [--real] [--real-max-length L ...]",
        description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60000, help="synthetic documents to pack")
    parser.add_argument("--max-length", type=int, default=512, help="row length for the synthetic documents")
    parser.add_argument("--real", action="store_true", help="also pack the 67 real xLAM rows (Phi-3 tokenizer)")
    parser.add_argument("--real-max-length", type=int, nargs="+", default=[1280, 512])
    args = parser.parse_args(argv)
    import datasets

    datasets.disable_progress_bars()
    print_table("synthetic", synthetic_docs(args.rows), args.max_length)
    if args.real:
        docs = real_docs()
        for max_length in args.real_max_length:
            print_table("real xLAM sample", docs, max_length)
    return 0


if __name__ == "__main__":
    sys.exit(main())
