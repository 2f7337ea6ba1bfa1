"""Bad inputs through the real command line: each gives one line on stderr naming the file, key or row,
no traceback, and a non-zero exit; nothing half-written is left behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from fcdist import cli
from fcdist.config import load_config

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "configs" / "jobs" / "tiny-cpu.yaml")
BINARY = bytes(range(255, -1, -1)) * 8  # not UTF-8 from its first byte


@pytest.fixture(autouse=True)
def quiet_progress_bars():
    """datasets' progress bars write to stderr too; the one line asserted here is the only other thing there."""
    import datasets

    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


def error_line(capsys, code: int, expected_code: int = 1) -> str:
    """The single line a failing stage printed; fails on a traceback or any second line."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected_code and len(lines) == 1, err
    return lines[0]


def base(tiny_model_dir, tmp_path, data) -> list[str]:
    return ["--config", TINY, f"model.name_or_path={tiny_model_dir}", f"data.source={data}",
            f"output.root={tmp_path / 'runs'}", "data.num_shards=1"]


def rows_file(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def synth_rows(synth_data_file: Path, n: int) -> list[dict]:
    return [json.loads(line) for line in synth_data_file.read_text().splitlines()[:n]]


# ---------------------------------------------------------------- data, predictions, config, model files


@pytest.mark.parametrize("content, says", [(b"", "the file is empty"), (b"\n \n", "the file is empty"),
                                           (BINARY, "not a UTF-8 text file")])
def test_an_empty_or_binary_data_file_is_named(content, says, tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "rows.jsonl"
    data.write_bytes(content)
    line = error_line(capsys, cli.main(["preprocess", *base(tiny_model_dir, tmp_path, data)]))
    assert line.startswith("fcdist preprocess: error: ") and f"{data}: {says}" in line


def test_a_binary_gold_or_predictions_file_is_named(synth_data_file, tmp_path, capsys):
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(BINARY)
    out = str(tmp_path / "report.json")
    line = error_line(capsys, cli.main(["score", "--gold", str(binary), "--predictions", str(binary), "--out", out]), 2)
    assert f"{binary}: not a UTF-8 text file" in line
    line = error_line(capsys, cli.main(["score", "--gold", str(synth_data_file), "--predictions", str(binary), "--out", out]), 2)
    assert f"{binary}:1: not UTF-8 text" in line
    assert not Path(out).exists()


@pytest.mark.parametrize("content, says", [(BINARY, "not a YAML text file"), (b"", "the file is empty"),
                                           (b"# only a comment\n", "the file is empty"),
                                           (b"train: {max_steps: 5\n", "not valid YAML at line 2")])
def test_a_binary_empty_or_malformed_config_file_is_named(content, says, tmp_path, capsys):
    config = tmp_path / "job.yaml"
    config.write_bytes(content)
    line = error_line(capsys, cli.main(["preprocess", "--config", str(config)]))
    assert line.startswith(f"fcdist preprocess: error: {config}: {says}")


def test_a_model_folder_without_a_tokenizer_is_named(tiny_model_dir, synth_data_file, tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "model.safetensors"):
        (model / name).symlink_to(tiny_model_dir / name)
    line = error_line(capsys, cli.main(["preprocess", *base(model, tmp_path, synth_data_file)]))
    assert f"{model}: no tokenizer in this model folder" in line
    line = error_line(capsys, cli.main(["infer", "--model", str(model), "--data", str(synth_data_file),
                                        "--out", str(tmp_path / "p.jsonl"), "--config", TINY]))
    assert f"{model}: no tokenizer" in line and not (tmp_path / "p.jsonl").exists()


# ---------------------------------------------------------------- config values


@pytest.mark.parametrize("override", ["train.max_micro_batch=0", "infer.batch_size=0", "lora.dropout=7",
                                      "lora.dropout=-0.1", "train.max_grad_norm=-1", "distributed.timeout_minutes=0",
                                      "lora.alpha=-16", "lora.alpha=0"])
def test_an_out_of_range_setting_is_named_by_its_key(override, tiny_model_dir, synth_data_file, tmp_path, capsys):
    line = error_line(capsys, cli.main(["train", *base(tiny_model_dir, tmp_path, synth_data_file), override]))
    assert line.startswith("fcdist train: error: ") and f"'{override.split('=')[0]}'" in line
    assert not (tmp_path / "runs").exists(), "refused before anything is written"


def test_a_number_is_a_name_on_the_command_line(tiny_model_dir, synth_data_file, tmp_path, capsys):
    """Overrides are YAML, so output.name=123 is the int 123: a text field keeps the text as typed."""
    data = rows_file(tmp_path / "rows.jsonl", synth_rows(synth_data_file, 40))
    assert cli.main(["preprocess", *base(tiny_model_dir, tmp_path, data), "output.name=123"]) == 0
    assert (tmp_path / "runs" / "123" / "packed" / "manifest.json").is_file()
    config = load_config(TINY, ["output.name=007", "model.revision=0123", "model.revision=null"])
    assert config.output.name == "007" and config.model.revision is None
    assert load_config(TINY, ["model.revision=0123"]).model.revision == "0123", "the text as typed, not octal 83"
    assert load_config(TINY, ["train.max_steps=7"]).train.max_steps == 7, "numbers stay numbers elsewhere"
    capsys.readouterr()
    job = tmp_path / "job.yaml"
    job.write_text("output:\n  name: 123\n")  # in a file YAML's types stand: the message says to quote it
    line = error_line(capsys, cli.main(["preprocess", "--config", str(job)]))
    assert f"{job}: 'output.name' = 123 is invalid: expected str (write '123' in quotes for text)" in line


# ---------------------------------------------------------------- rows and preprocessing leftovers


def test_an_oversized_row_is_refused_before_it_is_tokenized(tiny_model_dir, synth_data_file, tmp_path, capsys):
    """max_length 512 -> 65536 characters at most; the row would cost memory and minutes to tokenize in full."""
    rows = synth_rows(synth_data_file, 40)
    rows[5] = rows[5] | {"id": "huge", "query": "word " * 20000}
    data = rows_file(tmp_path / "rows.jsonl", rows)
    line = error_line(capsys, cli.main(["preprocess", *base(tiny_model_dir, tmp_path, data)]))
    assert f"{data}: row id='huge': query + tools + answers are longer than 65536 characters" in line
    assert not list((tmp_path / "runs").rglob("shard-*")), "nothing half-written"

    assert cli.main(["preprocess", *base(tiny_model_dir, tmp_path, data), "data.on_bad_row=skip"]) == 0
    manifest = json.loads((tmp_path / "runs" / "tiny-cpu" / "packed" / "manifest.json").read_text())
    assert manifest["totals"]["skipped"] == 1 and manifest["totals"]["rows_in"] == 40


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_folders_of_killed_preprocess_runs_are_removed(tiny_model_dir, synth_data_file, tmp_path, capsys):
    packed = tmp_path / "runs" / "tiny-cpu" / "packed"
    host, dead = socket.gethostname(), dead_pid()
    stale = [f".shard-0-of-1.tmp-{host}-{dead}", f".shard-1-of-2.tmp-{dead}"]  # the second: the old naming
    kept = [f".shard-0-of-1.tmp-{host}-{os.getppid()}", f".shard-0-of-1.tmp-other-node-{dead}"]  # alive; unknowable
    for name in stale + kept:
        (packed / name / "data").mkdir(parents=True)
    data = rows_file(tmp_path / "rows.jsonl", synth_rows(synth_data_file, 40))
    assert cli.main(["preprocess", *base(tiny_model_dir, tmp_path, data)]) == 0
    assert sorted(p.name for p in packed.glob(".shard-*")) == sorted(kept)
    err = capsys.readouterr().err
    assert f"{packed}: removed 2 folder(s) left by killed preprocess runs: {', '.join(sorted(stale))}" in err


@pytest.mark.skipif(not Path("/dev/full").is_char_device(), reason="needs the /dev/full device")
def test_a_full_disk_is_recognised_in_torch_words():
    """torch.save onto a full disk says "unexpected pos N vs M" (a RuntimeError), not ENOSPC."""
    import torch

    from fcdist.train.saving import is_disk_full

    with pytest.raises(Exception) as info:
        torch.save({"weights": torch.zeros(100_000)}, "/dev/full")
    assert is_disk_full(info.value), info.value
    assert not is_disk_full(RuntimeError("CUDA out of memory"))
