"""Every command and script a user runs answers --help with a usage line."""

import subprocess
import sys
from pathlib import Path

import pytest

from fcdist.cli import STAGES, main

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(str(p.relative_to(ROOT)) for pattern in ("launch/*.py", "bench/*.py") for p in ROOT.glob(pattern))


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_has_help_with_a_usage_line(stage, capsys):
    with pytest.raises(SystemExit) as info:
        main([stage, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and (f"fcdist {stage}" in out or "accelerate launch" in out)


def test_top_level_help_lists_every_stage(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(stage in out for stage in STAGES)
    assert main(["nosuch"]) == 2 and "unknown stage 'nosuch'" in capsys.readouterr().err


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_has_help(script):
    result = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")


def test_inspect_marks_the_loss_tokens(tiny_config_factory, synth_data_file, capsys):
    from fcdist.preprocess.inspect import main as inspect

    config = tiny_config_factory()
    args = ["--config", "configs/jobs/tiny-cpu.yaml", f"model.name_or_path={config.model.name_or_path}",
            f"data.source={synth_data_file}", "--row", "3", "--no-color"]
    assert inspect(args) == 0
    out = capsys.readouterr().out
    prompt, marked = (part.replace("|", "").replace("[[", "").replace("]]", "") for part in out.split("[[", 1))
    assert prompt.endswith("<calls>") and "</calls></s>" in marked, "only the completion and eos are marked"
    assert "row 3:" in out and "carry loss" in out
    with pytest.raises(KeyError, match="no row with id '999999'"):
        inspect(args[:-3] + ["--row", "999999"])


def test_inspect_says_how_many_loss_tokens_survive(real_rows_file, phi3_tokenizer_dir, capsys):
    """Row 41460 of the real sample: 579 Phi-3 tokens, its 65 loss tokens all past 512."""
    from fcdist.preprocess.inspect import main as inspect

    args = ["--config", "configs/jobs/phi3-xlam-qlora.yaml", f"model.name_or_path={phi3_tokenizer_dir}",
            f"data.source={real_rows_file}"]
    assert inspect([*args, "data.max_length=512", "--row", "41460", "--no-color"]) == 0
    assert ("row 41460: 579 tokens, 65 carry loss (train_on=completion); over max_length=512: truncation would leave "
            "0 of its 65 loss tokens, so it is dropped") in capsys.readouterr().out
    assert inspect([*args, "data.max_length=560", "--row", "41460", "--no-color"]) == 0
    assert "truncated to 560 tokens, 46 of its 65 loss tokens survive" in capsys.readouterr().out
    assert inspect([*args, "--row", "41460", "--no-color"]) == 0
    assert "fits max_length=1280: all 65 loss tokens are trained on" in capsys.readouterr().out


# ---------------------------------------------------------------- key=value overrides on every stage that reads a config


def rendered(path):
    import json

    return [json.loads(line) for line in path.read_text().splitlines()]


def test_render_takes_overrides(synth_data_file, tmp_path):
    from fcdist.data.xlam import is_heldout

    out = tmp_path / "r.jsonl"
    assert main(["render", "--data", str(synth_data_file), "--out", str(out), "data.heldout_fraction=0.5"]) == 0
    records = rendered(out)
    assert [r["split"] == "heldout" for r in records] == [is_heldout(r["id"], 0.5) for r in records]
    assert 0.3 < sum(r["split"] == "heldout" for r in records) / len(records) < 0.7


def test_render_chat_template_override_from_the_issue(synth_data_file, phi3_tokenizer_dir, tmp_path):
    out = tmp_path / "r.jsonl"
    args = ["render", "--data", str(synth_data_file), "--out", str(out), "--config", "configs/jobs/phi3-xlam-qlora.yaml",
            "data.template=chat", f"model.name_or_path={phi3_tokenizer_dir}"]
    assert main(args) == 0
    first = rendered(out)[0]
    assert first["prompt"].startswith("<|user|>") and "<|assistant|>" in first["prompt"]


@pytest.mark.parametrize("command", [["fcdist", "train"], ["fcdist", "demo"], ["launch/train.py"]])
def test_train_and_demo_read_overrides(command):
    """The override reaches the config: an impossible run name is refused naming the key, before any work."""
    if command[0] == "fcdist":
        argv = [sys.executable, "-m", "fcdist.cli", command[1]]
    else:
        argv = [sys.executable, *command]
    config = [] if command[-1] == "demo" else ["--config", "configs/jobs/tiny-cpu.yaml"]
    result = subprocess.run([*argv, *config, "output.name=a/b"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "'output.name' must be a plain folder name" in result.stderr
