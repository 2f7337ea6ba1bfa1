"""The README's main command end to end: synth -> tiny model -> preprocess -> train -> gather -> infer -> score."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline_and_prints_the_score_table(tmp_path):
    overrides = [f"model.name_or_path={tmp_path}/model", f"data.source={tmp_path}/synth.jsonl", f"output.root={tmp_path}/runs",
                 "train.max_steps=6", "train.save_steps=3", "infer.max_new_tokens=24"]
    result = subprocess.run([sys.executable, "-m", "fcdist.cli", "demo", *overrides], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = tmp_path / "runs" / "tiny-cpu"
    assert (tmp_path / "synth.jsonl").is_file() and (tmp_path / "model" / "config.json").is_file()
    assert (run / "DONE").is_file() and (run / "gathered" / "adapter" / "adapter_model.safetensors").is_file()
    heldout = (run / "packed" / "heldout.jsonl").read_text().splitlines()
    report = json.loads((run / "score" / "report.json").read_text())
    assert report["n"] == len(heldout) > 0 and report["missing_predictions"] == 0
    assert set(report["by_category"]) >= {"simple", "multiple", "parallel", "parallel-multiple"}
    assert "| all |" in result.stdout and "exact match" in result.stdout
