"""The demo's learning report: untrained -> trained per call shape, training time and loss, example misses."""

from __future__ import annotations

import json

from fcdist.config import load_config
from fcdist.data.render import render_completion
from fcdist.data.synth import generate_rows
from fcdist.data.xlam import parse_rows
from fcdist.demo import write_learning_report
from fcdist.score import score


def test_report_puts_each_rate_untrained_beside_trained_and_lists_misses(tmp_path):
    config = load_config("configs/jobs/demo-cpu.yaml", [f"output.root={tmp_path}"])
    rows, _ = parse_rows(generate_rows(40, seed=2), "synth", "error")
    right = {row.id: render_completion(row.answers) for row in rows}
    right[rows[0].id] = "{'name': 'no_such_tool', 'arguments': {}}</calls>"  # one miss
    reports = {"seen functions": {"untrained": score(rows, {}), "trained": score(rows, right)}}
    run = config.run_dir
    run.mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    losses = [6.0, 5.0, 4.0, 2.0, 1.0, 0.0]  # logged every 10 steps, 5 s apart
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({"step": 10 * (i + 1), "loss": loss, "time": 100.0 + 5 * i, "window_s": 5.0}) + "\n"
        for i, loss in enumerate(losses)))

    markdown = write_learning_report(config, reports)
    assert "| seen functions | all | 40 | 0.0% -> 100.0% | 0.0% -> 97.5% | 0.0% -> 97.5% |" in markdown
    assert "Training: 60 steps in 0.5 min; loss 5.000 -> 1.000" in markdown
    miss = reports["seen functions"]["trained"]["per_row"][0]
    assert not miss["correct"] and f"id {rows[0].id}: {miss['reason']}" in markdown
    saved = json.loads((run / "learning.json").read_text())
    assert saved["training"]["seconds"] == 30.0 and "per_row" not in saved["scores"]["seen functions"]["trained"]
    assert (run / "learning.md").read_text() == markdown
