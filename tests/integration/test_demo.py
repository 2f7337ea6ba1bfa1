"""The README's main command end to end, as shipped: synth -> model -> preprocess -> train -> gather -> infer
-> score, untrained beside trained."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_trains_a_model_that_beats_the_untrained_one(tmp_path):
    overrides = [f"model.name_or_path={tmp_path}/model", f"data.source={tmp_path}/synth.jsonl", f"output.root={tmp_path}/runs"]
    result = subprocess.run([sys.executable, "-m", "fcdist.cli", "demo", *overrides], cwd=ROOT,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = tmp_path / "runs" / "demo-cpu"
    assert (run / "DONE").is_file() and (run / "gathered" / "merged" / "model.safetensors").is_file()
    assert "# Learning report: demo-cpu (untrained -> trained)" in result.stdout
    assert "| seen functions | all |" in result.stdout and (run / "loss.png").is_file()

    report = json.loads((run / "learning.json").read_text())
    untrained, trained = (report["scores"]["seen functions"][model] for model in ("untrained", "trained"))
    heldout = (run / "packed" / "heldout.jsonl").read_text().splitlines()
    assert trained["n"] == untrained["n"] == len(heldout) > 50
    assert untrained["parse_rate"] < 0.05, "a random model writes no calls"
    assert trained["parse_rate"] >= untrained["parse_rate"] + 0.2, "training taught the call format"
    assert report["training"]["loss_end"] < report["training"]["loss_start"] / 2
