"""`fcdist preprocess` on the tiny tokenizer and synthetic rows: shards, manifest, split, reruns, bad rows."""

from __future__ import annotations

import json

import datasets
import pytest

from fcdist.data.xlam import BadRowError, is_heldout, parse_row
from fcdist.preprocess import shards
from fcdist.preprocess.fingerprint import fingerprint_components
from fcdist.preprocess.tokenize import IGNORE_INDEX, tokenize_row


def run(config, num_shards):
    tokenizer = shards.load_tokenizer(config)
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
    tokenizer = shards.load_tokenizer(config)
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
    config = tiny_config_factory()
    manifest = run(config, 3)
    totals = manifest["totals"]
    rows = raw_rows(synth_data_file)
    heldout_ids = [r["id"] for r in rows if is_heldout(r["id"], config.data.heldout_fraction)]
    assert totals["rows_in"] == len(rows) and totals["skipped"] == 0
    assert totals["heldout"] == len(heldout_ids) > 0
    assert totals["rows_kept"] == len(rows) - len(heldout_ids)
    assert manifest["packing_efficiency"] >= 0.95
    docs = packed_documents(config, manifest)
    assert len(docs) == totals["rows_kept"]
    assert sum(map(len, docs)) == totals["tokens"]
    assert all(len(d) <= config.data.max_length for d in docs)

    tokenizer = shards.load_tokenizer(config)
    heldout_docs = {tuple(tokenize_row(parse_row(r, "s"), tokenizer, "seed", "completion").input_ids[:512])
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
        shards.check_manifest(changed, shards.load_tokenizer(changed))
    assert shards.check_manifest(config, shards.load_tokenizer(config))["num_shards"] == 1


def test_fingerprint_follows_data_content_and_tokenizer(tiny_config_factory, synth_data_file, tmp_path):
    config = tiny_config_factory()
    tokenizer = shards.load_tokenizer(config)
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


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if tools %}<|tools|>{% for t in tools %}{{ t['name'] }};{% endfor %}\n{% endif %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_chat_template_mode_renders_with_the_tokenizer_template(tiny_config_factory, synth_data_file):
    config = tiny_config_factory("data.template=chat")
    tokenizer = shards.load_tokenizer(config)
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
