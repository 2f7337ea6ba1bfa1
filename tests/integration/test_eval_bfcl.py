"""`fcdist eval bfcl` end to end on the tiny model and the hand-written BFCL fixtures (tests/fixtures/bfcl/):
convert, infer (sharded, resumed), score by BFCL's rules, and a report that says what it scored of what it read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fcdist.cli import main
from fcdist.data.render import render_completion

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "bfcl"
TINY = str(ROOT / "configs" / "jobs" / "tiny-cpu.yaml")
CATEGORIES = ["simple", "multiple", "parallel", "parallel_multiple", "irrelevance"]


def eval_bfcl(model: Path, out: Path, *extra: str) -> int:
    return main(["eval", "bfcl", "--model", str(model), "--bfcl", str(FIXTURES), "--out", str(out), "--config", TINY,
                 "infer.max_new_tokens=8", "infer.batch_size=10", *extra])


@pytest.fixture(scope="module")
def out(tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "bfcl"
    assert eval_bfcl(tiny_model_dir, out) == 0
    return out


def read_report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_the_report_scores_every_case_read_per_category(out):
    report = read_report(out)
    assert report["rules"] == "bfcl"
    assert {name: rates["n"] for name, rates in report["by_category"].items()} == dict.fromkeys(CATEGORIES, 2)
    assert report["cases"]["by_category"] == dict.fromkeys(CATEGORIES, {"read": 2, "converted": 2})
    assert (report["cases_read"], report["cases_scored"], report["missing_predictions"]) == (10, 10, 0)
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 10
    markdown = (out / "report.md").read_text()
    assert "| parallel_multiple | 2 | 2 | 0 |" in markdown and "| all | 10 | 10 | 0 |" in markdown


def test_a_rerun_resumes_and_generates_nothing(out, tiny_model_dir, capsys):
    before = (out / "predictions.jsonl").read_text()
    assert eval_bfcl(tiny_model_dir, out) == 0
    assert "0 generated, 10 already done of 10 rows" in capsys.readouterr().out
    assert (out / "predictions.jsonl").read_text() == before


def test_shards_merge_and_score_like_one_run(out, tiny_model_dir, tmp_path, capsys):
    sharded = tmp_path / "sharded"
    assert eval_bfcl(tiny_model_dir, sharded, "--shard", "1", "--num-shards", "2") == 0
    assert not (sharded / "report.json").exists() and "not every shard is done yet" in capsys.readouterr().out
    assert eval_bfcl(tiny_model_dir, sharded, "--shard", "0", "--num-shards", "2") == 0  # completes the set: scores
    assert read_report(sharded)["per_row"] == read_report(out)["per_row"]
    assert main(["eval", "bfcl", "--score-only", "--num-shards", "2", "--out", str(sharded)]) == 0  # the bfcl-score stage
    assert read_report(sharded)["per_row"] == read_report(out)["per_row"]


def other_right_answer(row: dict) -> str:
    """Each call with the last acceptable value of every argument, and the arguments that may be omitted left out."""
    calls = [{"name": call["name"], "arguments": {arg: values[-1] for arg, values in accept["values"].items()
                                                  if arg not in accept["may_omit"]}}
             for call, accept in zip(json.loads(row["answers"]), json.loads(row["acceptable"]))]
    return render_completion(calls[::-1])  # parallel calls in any order


def test_right_answers_score_full_marks_in_every_category(out, tmp_path):
    scored = Path(shutil.copytree(out, tmp_path / "right"))
    gold = [json.loads(line) for line in (scored / "gold.jsonl").read_text().splitlines()]
    (scored / "predictions.jsonl").write_text("".join(
        json.dumps({"id": row["id"], "completion": other_right_answer(row)}) + "\n" for row in gold))
    assert main(["eval", "bfcl", "--score-only", "--out", str(scored)]) == 0
    report = read_report(scored)
    assert {name: rates["exact_match"] for name, rates in report["by_category"].items()} == dict.fromkeys(CATEGORIES, 1.0)
    assert all(row["correct"] for row in report["per_row"])
