"""`fcdist preprocess` on the tiny tokenizer and synthetic rows: shards, manifest, split, reruns, bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from fcdist.data.xlam import BadRowError, is_heldout, parse_row
from fcdist.preprocess import shards
from fcdist.preprocess.fingerprint import fingerprint_components
from fcdist.preprocess.tokenize import IGNORE_INDEX, tokenize_row
from fcdist.runtime import load_tokenizer

ROOT = Path(__file__).resolve().parents[2]


def run(config, num_shards):
    tokenizer = load_tokenizer(config)
    for index in range(num_shards):
        shards.preprocess_shard(config, index, num_shards, tokenizer)
    return json.loads(shards.write_manifest(config, num_shards, tokenizer).read_text())


def packed_documents(config, manifest):
    """Every document in the packed shards, as a tuple of token ids."""
    docs = []
    for shard in manifest["shards"]:
        for row in datasets.load_from_disk(str(config.packed_dir / shard["shard"] / "data")):
            start = 0
            for length in row["doc_lengths"]:
                docs.append(tuple(row["input_ids"][start:start + length]))
                start += length
    return docs


def raw_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_masking_marks_exactly_the_completion_and_eos(tiny_config_factory, synth_data_file):
    config = tiny_config_factory()
    tokenizer = load_tokenizer(config)
    for raw in raw_rows(synth_data_file)[:200]:
        row = parse_row(raw, "synth")
        doc = tokenize_row(row, tokenizer, "seed", "completion")
        loss_ids = [t for t, label in zip(doc.input_ids, doc.labels) if label != IGNORE_INDEX]
        prompt_ids = [t for t, label in zip(doc.input_ids, doc.labels) if label == IGNORE_INDEX]
        completion = "\n".join(str(a) for a in row.answers) + "</calls>"
        assert tokenizer.decode(loss_ids[:-1]) == completion and loss_ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(prompt_ids, skip_special_tokens=True).endswith("<calls>")
        assert doc.labels[:len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids), "loss tokens are one contiguous tail"
    everything = tokenize_row(row, tokenizer, "seed", "all")
    assert everything.labels == everything.input_ids


def test_shards_and_manifest(tiny_config_factory, synth_data_file):
    config = tiny_config_factory("data.max_length=1536")  # over the longest row: every document is packed whole
    manifest = run(config, 3)
    totals = manifest["totals"]
    rows = raw_rows(synth_data_file)
    heldout_ids = [r["id"] for r in rows if is_heldout(r["id"], config.data.heldout_fraction)]
    assert totals["rows_in"] == len(rows) and totals["skipped"] == 0
    assert totals["heldout"] == len(heldout_ids) > 0
    assert totals["rows_kept"] == len(rows) - len(heldout_ids) and totals["truncated"] == totals["dropped_no_loss"] == 0
    assert manifest["packing_efficiency"] >= 0.95
    docs = packed_documents(config, manifest)
    assert len(docs) == totals["rows_kept"]
    assert sum(map(len, docs)) == totals["tokens"]
    assert all(len(d) <= config.data.max_length for d in docs)

    tokenizer = load_tokenizer(config)
    heldout_docs = {tuple(tokenize_row(parse_row(r, "s"), tokenizer, "seed", "completion").input_ids)
                    for r in rows if r["id"] in set(heldout_ids)}
    assert not heldout_docs & set(docs), "held-out rows never reach training"
    gold = raw_rows(config.packed_dir / "heldout.jsonl")
    assert [r["id"] for r in gold] == heldout_ids and gold[0] == next(r for r in rows if r["id"] == heldout_ids[0])


def test_heldout_split_identical_whatever_the_shard_count(tiny_config_factory):
    one = tiny_config_factory("output.name=one")
    four = tiny_config_factory("output.name=four")
    run(one, 1)
    run(four, 4)
    ids = [raw_rows(c.packed_dir / "heldout.jsonl") for c in (one, four)]
    assert [r["id"] for r in ids[0]] == [r["id"] for r in ids[1]]


def test_rerun_skips_complete_shards(tiny_config_factory, capsys):
    config = tiny_config_factory()
    run(config, 2)
    marker = config.packed_dir / "shard-1-of-2" / shards.MARKER
    before = marker.stat().st_mtime_ns
    capsys.readouterr()
    run(config, 2)
    assert "complete with the same fingerprint, skipped" in capsys.readouterr().out
    assert marker.stat().st_mtime_ns == before


def test_shard_killed_mid_write_is_redone(tiny_config_factory, monkeypatch):
    config = tiny_config_factory()
    real_save = datasets.Dataset.save_to_disk

    def save_then_die(self, path, **kwargs):
        real_save(self, path, **kwargs)  # the Arrow files are on disk...
        raise KeyboardInterrupt("killed")  # ...but the task dies before the shard is complete

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        shards.preprocess_shard(config, 0, 2)
    assert not (config.packed_dir / "shard-0-of-2").exists(), "an unfinished shard never looks complete"
    assert not list(config.packed_dir.glob(".shard-*")), "no temporary folder is left behind"
    (config.packed_dir / ".shard-1-of-2.tmp-999999").mkdir()  # what a SIGKILLed task leaves: ignored
    monkeypatch.setattr(datasets.Dataset, "save_to_disk", real_save)
    manifest = run(config, 2)
    assert [s["shard"] for s in manifest["shards"]] == ["shard-0-of-2", "shard-1-of-2"]


def test_manifest_refuses_missing_or_damaged_shards(tiny_config_factory):
    config = tiny_config_factory()
    shards.preprocess_shard(config, 0, 2)
    with pytest.raises(RuntimeError, match="shard-1-of-2 is missing or incomplete"):
        shards.write_manifest(config, 2)
    shards.preprocess_shard(config, 1, 2)
    arrow = next((config.packed_dir / "shard-1-of-2" / "data").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:-8] + b"damaged!")
    with pytest.raises(RuntimeError, match="shard-1-of-2 changed after it was written"):
        shards.write_manifest(config, 2)


@pytest.mark.parametrize("override, key", [
    ("data.train_on=all", "data.train_on"),
    ("data.max_length=256", "data.max_length"),
    ("data.packing=false", "data.packing"),
    ("data.overlong=drop", "data.overlong"),
    ("data.heldout_fraction=0.1", "data.heldout_fraction"),
    ("data.on_bad_row=skip", "data.on_bad_row"),
])
def test_fingerprint_names_the_changed_setting(tiny_config_factory, override, key):
    config = tiny_config_factory()
    run(config, 1)
    changed = tiny_config_factory(override)
    with pytest.raises(ValueError, match=f"other settings: {key} "):
        shards.check_manifest(changed, load_tokenizer(changed))
    assert shards.check_manifest(config, load_tokenizer(config))["num_shards"] == 1


def test_shards_of_an_older_preprocessing_format_are_not_trained_on(tiny_config_factory):
    config = tiny_config_factory()
    run(config, 1)
    path = config.packed_dir / shards.MANIFEST
    manifest = json.loads(path.read_text())
    del manifest["fingerprint_components"]["preprocess.format"]  # what a manifest from before the format looks like
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="other settings: preprocess.format "):
        shards.check_manifest(config, load_tokenizer(config))


def test_fingerprint_follows_data_content_and_tokenizer(tiny_config_factory, synth_data_file, tmp_path):
    config = tiny_config_factory()
    tokenizer = load_tokenizer(config)
    base = fingerprint_components(config, tokenizer)
    edited = tmp_path / "edited.jsonl"
    edited.write_text(synth_data_file.read_text().replace("</", "</", 1) + "\n")
    assert fingerprint_components(tiny_config_factory(data=edited), tokenizer)["data.source"] != base["data.source"]
    tokenizer.add_tokens(["<new_token>"])
    assert fingerprint_components(config, tokenizer)["model.tokenizer"] != base["model.tokenizer"]


def write_rows_with_one_bad(path, rows, bad_index):
    rows = [dict(r) for r in rows]
    rows[bad_index]["answers"] = json.dumps([{"name": "no_such_function", "arguments": {}}])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows[bad_index]["id"]


def test_bad_row_error_names_the_row_and_writes_nothing(tiny_config_factory, synth_data_file, tmp_path):
    bad_file = tmp_path / "bad.jsonl"
    bad_id = write_rows_with_one_bad(bad_file, raw_rows(synth_data_file), 123)
    config = tiny_config_factory(data=bad_file)
    with pytest.raises(BadRowError, match=rf"bad.jsonl: row id={bad_id}: 'answers'\[0\] calls 'no_such_function'"):
        shards.preprocess_shard(config, 0, 1)
    assert not config.packed_dir.exists() or not any(config.packed_dir.iterdir())


def test_bad_row_skip_is_counted(tiny_config_factory, synth_data_file, tmp_path):
    bad_file = tmp_path / "bad.jsonl"
    write_rows_with_one_bad(bad_file, raw_rows(synth_data_file), 5)
    manifest = run(tiny_config_factory("data.on_bad_row=skip", data=bad_file), 2)
    assert manifest["totals"]["skipped"] == 1
    assert manifest["shards"][0]["skip_reasons"] == {"'answers'[0] calls 'no_such_function', which is not among the row's tools": 1}


def test_cli_preprocess_all_shards_then_manifest(tiny_config_factory, tiny_model_dir, synth_data_file, tmp_path):
    from fcdist.cli import main

    args = ["preprocess", "--config", "configs/jobs/tiny-cpu.yaml", f"model.name_or_path={tiny_model_dir}",
            f"data.source={synth_data_file}", f"output.root={tmp_path}", "data.num_shards=2"]
    assert main(args) == 0
    manifest = json.loads((tmp_path / "tiny-cpu" / "packed" / "manifest.json").read_text())
    assert manifest["num_shards"] == 2 and manifest["totals"]["rows_in"] == 600


def test_cli_preprocess_last_task_of_a_one_based_array(tiny_model_dir, synth_data_file, tmp_path, monkeypatch):
    """`fcdist preprocess` run straight in `sbatch --array=1-4`: task 4 builds shard 3 of 4 (it used to ask for a
    shard 4 of 4, past the rows), by the rule infer follows too (tests/unit/test_runtime.py)."""
    from fcdist.cli import main

    for key, value in {"ID": 4, "MIN": 1, "MAX": 4, "COUNT": 4}.items():
        monkeypatch.setenv(f"SLURM_ARRAY_TASK_{key}", str(value))
    args = ["preprocess", "--config", "configs/jobs/tiny-cpu.yaml", f"model.name_or_path={tiny_model_dir}",
            f"data.source={synth_data_file}", f"output.root={tmp_path}"]
    assert main(args) == 0
    packed = tmp_path / "tiny-cpu" / "packed"
    assert sorted(p.name for p in packed.glob("shard-*")) == ["shard-3-of-4"]
    assert json.loads((packed / "shard-3-of-4" / shards.MARKER).read_text())["rows_in"] == 150


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if tools %}<|tools|>{% for t in tools %}{{ t['name'] }};{% endfor %}\n{% endif %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_chat_template_mode_renders_with_the_tokenizer_template(tiny_config_factory, synth_data_file):
    config = tiny_config_factory("data.template=chat")
    tokenizer = load_tokenizer(config)
    tokenizer.chat_template = CHAT_TEMPLATE
    row = parse_row(raw_rows(synth_data_file)[0], "synth")
    doc = tokenize_row(row, tokenizer, "chat", "completion")
    text = tokenizer.decode(doc.input_ids)
    assert text.startswith(f"<|user|>{row.query}\n<|tools|>{row.tools[0]['name']};")
    assert "<|assistant|><calls>" in text and text.endswith("</calls></s>")
    loss = tokenizer.decode([t for t, label in zip(doc.input_ids, doc.labels) if label != IGNORE_INDEX])
    assert loss == "\n".join(str(a) for a in row.answers) + "</calls></s>"
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="data.template=chat needs a tokenizer with a chat template"):
        tokenize_row(row, tokenizer, "chat", "completion")


# ---------------------------------------------------------------- truncation, empty batches, duplicate ids


def loss_tokens_in_shards(config, manifest):
    """Loss-carrying labels and packed rows without any, read back from the Arrow shards."""
    labels = [row for shard in manifest["shards"]
              for row in datasets.load_from_disk(str(config.packed_dir / shard["shard"] / "data"))["labels"]]
    return sum(label != IGNORE_INDEX for row in labels for label in row), sum(all(label == IGNORE_INDEX for label in row) for row in labels)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_truncation_accounting_matches_the_shards(tiny_config_factory, synth_data_file, tmp_path, capsys):
    rows = raw_rows(synth_data_file)[:40]
    long_query = rows[0] | {"id": "long-prompt", "query": "please " * 400}  # its prompt alone is over max_length
    config = tiny_config_factory("data.max_length=256", "data.heldout_fraction=0",
                                 data=write_jsonl(tmp_path / "rows.jsonl", [long_query, *rows]))
    tokenizer = load_tokenizer(config)
    docs = [tokenize_row(parse_row(r, "s"), tokenizer, "seed", "completion") for r in [long_query, *rows]]
    prompt_lengths = [doc.labels.index(next(label for label in doc.labels if label != IGNORE_INDEX)) for doc in docs]
    over = [(len(doc.input_ids), prompt) for doc, prompt in zip(docs, prompt_lengths) if len(doc.input_ids) > 256]
    assert prompt_lengths[0] > 256 and any(prompt < 256 for _, prompt in over), "the rows cover both kinds"

    manifest = run(config, 2)
    totals = manifest["totals"]
    assert totals["dropped_no_loss"] == sum(prompt >= 256 for _, prompt in over)
    assert totals["truncated"] == totals["partial_loss"] == sum(prompt < 256 for _, prompt in over)
    assert totals["rows_kept"] == len(docs) - totals["dropped_no_loss"]
    in_shards, rows_without_loss = loss_tokens_in_shards(config, manifest)
    assert totals["loss_tokens"] == in_shards and rows_without_loss == 0
    assert totals["loss_tokens"] + totals["loss_tokens_lost"] == sum(doc.num_loss_tokens for doc in docs)
    assert manifest["lengths"]["over_max_length"] == len(over) and manifest["lengths"]["max"] == max(n for n, _ in over)
    assert tuple(docs[0].input_ids[:256]) not in set(packed_documents(config, manifest)), "the row left without loss is not packed"
    out, err = capsys.readouterr()
    assert f"{len(over) / len(docs):.1%} over data.max_length=256" in out
    assert "lose loss tokens to data.max_length=256; raise data.max_length" in err


def test_max_length_shorter_than_every_prompt_is_refused(tiny_config_factory):
    config = tiny_config_factory("data.max_length=16")
    with pytest.raises(ValueError, match=r"data.max_length=16 leaves none of the \d+ documents of shard-0-of-1 with a token to train on"):
        shards.preprocess_shard(config, 0, 1)
    assert not config.packed_dir.exists() or not any(config.packed_dir.iterdir()), "nothing is written"


def heldout_ids_of(rows, fraction):
    return [r for r in rows if is_heldout(r["id"], fraction)]


def test_a_tokenizer_batch_with_nothing_to_train_on(tiny_config_factory, synth_data_file, tmp_path):
    """257 rows: the second tokenizer batch of 256 holds one row, and it is held out."""
    rows = raw_rows(synth_data_file)
    fraction = 0.05
    last = heldout_ids_of(rows, fraction)[0]
    kept = [r for r in rows if not is_heldout(r["id"], fraction)][:256]
    config = tiny_config_factory(f"data.heldout_fraction={fraction}", "data.num_proc=1", "data.max_length=1536",
                                 data=write_jsonl(tmp_path / "rows.jsonl", [*kept, last]))
    manifest = run(config, 1)
    assert (manifest["totals"]["rows_kept"], manifest["totals"]["heldout"]) == (256, 1)


def test_bad_row_in_a_batch_of_its_own_is_reported(tiny_config_factory, synth_data_file, tmp_path):
    rows = [dict(r) for r in raw_rows(synth_data_file)[:257]]
    bad_id = write_rows_with_one_bad(tmp_path / "bad.jsonl", rows, 256)
    config = tiny_config_factory("data.num_proc=1", data=tmp_path / "bad.jsonl")
    with pytest.raises(BadRowError, match=rf"row id={bad_id}: 'answers'\[0\] calls 'no_such_function'"):
        shards.preprocess_shard(config, 0, 1)


def rows_with_a_duplicate(synth_data_file, tmp_path):
    """100 rows where row 80 repeats row 10's id: with two shards, the repeat sits in the other shard."""
    rows = [dict(r) for r in raw_rows(synth_data_file)[:100]]
    rows[80]["id"] = rows[10]["id"]
    return write_jsonl(tmp_path / "dup.jsonl", rows), rows[10]["id"]


def test_duplicate_ids_across_shards_are_refused(tiny_config_factory, synth_data_file, tmp_path):
    path, dup = rows_with_a_duplicate(synth_data_file, tmp_path)
    config = tiny_config_factory(data=path)
    shards.preprocess_shard(config, 0, 2)  # the first occurrence is no duplicate
    with pytest.raises(BadRowError, match=rf"dup.jsonl: row id={dup}: duplicate id: rows 10 and 80 \(counting from 0\)"):
        shards.preprocess_shard(config, 1, 2)
    assert not (config.packed_dir / "shard-1-of-2").exists()


def test_duplicate_ids_are_skipped_and_counted(tiny_config_factory, synth_data_file, tmp_path):
    path, dup = rows_with_a_duplicate(synth_data_file, tmp_path)
    config = tiny_config_factory("data.on_bad_row=skip", "data.heldout_fraction=0", "data.max_length=1536", data=path)
    manifest = run(config, 2)
    assert [s["skip_reasons"] for s in manifest["shards"]] == [{}, {shards.DUPLICATE_ID: 1}]
    assert (manifest["totals"]["skipped"], manifest["totals"]["rows_kept"]) == (1, 99)


@pytest.mark.parametrize("max_length, truncated, dropped_no_loss", [(512, 7, 12), (1280, 0, 0)])
def test_real_rows_with_the_real_phi3_tokenizer(real_rows_file, phi3_tokenizer_dir, tmp_path, max_length, truncated, dropped_no_loss):
    from fcdist.config import load_config

    config = load_config(ROOT / "configs/jobs/phi3-xlam-qlora.yaml", [
        f"model.name_or_path={phi3_tokenizer_dir}", f"data.source={real_rows_file}", f"output.root={tmp_path}",
        "data.num_shards=1", "data.num_proc=1", f"data.max_length={max_length}", "data.on_bad_row=skip"])
    assert not (phi3_tokenizer_dir / "config.json").exists(), "a tokenizer folder without a model config loads"
    manifest = run(config, 1)
    totals = manifest["totals"]
    assert (totals["rows_in"], totals["skipped"], totals["heldout"]) == (67, 2, 2)  # 2 rows repeat a tool name
    assert (totals["truncated"], totals["partial_loss"], totals["dropped_no_loss"]) == (truncated, truncated, dropped_no_loss)
    in_shards, rows_without_loss = loss_tokens_in_shards(config, manifest)
    assert totals["loss_tokens"] == in_shards and rows_without_loss == 0
    assert manifest["packing_efficiency"] >= 0.85
