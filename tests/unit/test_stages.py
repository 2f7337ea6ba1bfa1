"""The stage chain (fcdist/stages.py) that slurm/pipeline.sh, `fcdist submit` and `fcdist demo` walk: its order
and dependencies, its arrays and resources, the arguments each stage's task runs with, and the quoting of
every sbatch line it prints. The run layout (fcdist/layout.py) that gives the paths."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fcdist import stages
from fcdist.layout import RunLayout
from fcdist.train.trainer import RunFolder

ROOT = Path(__file__).resolve().parents[2]
TINY = "configs/jobs/tiny-cpu.yaml"
NASTY = "a b; $(touch pwned) 'q' \"d\" `x`"  # spaces, command substitution, ;, quotes


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def config_args(tmp_path, *extra):
    return ["--config", TINY, f"output.root={tmp_path}/{NASTY}", *extra]


def test_each_stage_waits_for_the_one_before(tmp_path, at_root):
    jobs = stages.plan(stages.load_job(config_args(tmp_path)), stages.Request())
    names = [job.stage.name for job in jobs]
    assert names == ["preprocess", "train", "gather", "infer", "score"]
    assert [job.stage.after for job in jobs] == [None, *names[:-1]]


def test_a_bfcl_folder_in_the_config_ends_the_chain_with_the_bfcl_stages(tmp_path, at_root):
    config = stages.load_job(config_args(tmp_path, "eval.bfcl_dir=tests/fixtures/bfcl"))
    jobs = stages.plan(config, stages.Request(gpus_per_node=8, infer_shards=3))
    names = [job.stage.name for job in jobs]
    assert names == ["preprocess", "train", "gather", "infer", "score", "bfcl-convert", "bfcl-infer", "bfcl-score"]
    assert [job.stage.after for job in jobs] == [None, *names[:-1]]
    bfcl = {job.stage.name: (job.tasks, job.num_shards, job.resources) for job in jobs[5:]}
    assert bfcl == {"bfcl-convert": (1, None, stages.Resources()), "bfcl-infer": (3, 3, stages.Resources(1, 1)),
                    "bfcl-score": (1, 3, stages.Resources())}  # the array's GPU as infer's; score merges its 3 shards


def test_arrays_and_resources_follow_the_config_and_the_request(tmp_path, at_root):
    config = stages.load_job(config_args(tmp_path, "data.num_shards=3"))
    request = stages.Request(nodes=4, gpus_per_node=8, time="1:00:00", infer_shards=5)
    jobs = {job.stage.name: job for job in stages.plan(config, request)}
    assert {name: (job.tasks, job.num_shards) for name, job in jobs.items()} == {
        "preprocess": (3, 3), "train": (1, None), "gather": (1, None), "infer": (5, 5), "score": (1, 5)}
    assert jobs["train"].resources == stages.Resources(4, 8, "1:00:00")
    assert jobs["infer"].resources == stages.Resources(1, 1) and jobs["gather"].resources == stages.Resources()
    cpu = {job.stage.name: job.resources for job in stages.plan(config, stages.Request(infer_shards=1))}
    assert cpu["infer"] == stages.Resources() and cpu["train"].sbatch_options() == []


def test_each_stage_task_runs_its_command_with_the_run_layout(tmp_path, at_root):
    args = config_args(tmp_path, "train.max_steps=3")
    layout = RunLayout.of(stages.load_job(args))
    run, heldout, predictions = str(layout.root), str(layout.heldout), str(layout.predictions)
    commands = {stage.name: stage.commands(layout, args, 1, 4) for stage in stages.STAGES if stage.commands}
    assert commands == {
        "preprocess": [["preprocess", *args, "--shard", "1", "--num-shards", "4"]],
        "gather": [["gather", "--run", run]],
        "infer": [["infer", "--run", run, "--data", heldout, "--out", predictions, "--shard", "1", "--num-shards", "4",
                   "--no-progress", *args]],
        "score": [["infer", "--merge-shards", "--num-shards", "4", "--data", heldout, "--out", predictions],
                  ["score", "--gold", heldout, "--predictions", predictions, "--out", str(layout.report)]],
        "bfcl-convert": [["eval", "bfcl", "--convert-only", "--out", f"{run}/bfcl", *args]],
        "bfcl-infer": [["infer", "--run", run, "--data", f"{run}/bfcl/gold.jsonl", "--out", f"{run}/bfcl/predictions.jsonl",
                        "--shard", "1", "--num-shards", "4", "--no-progress", *args]],
        "bfcl-score": [["eval", "bfcl", "--score-only", "--num-shards", "4", "--out", f"{run}/bfcl"]],
    }
    assert stages.STAGE["score"].commands(layout, args, 0, 1) == [commands["score"][1]]  # nothing to merge
    assert stages.STAGE["train"].commands is None  # launched per node (fcdist/submit.py)


def test_sbatch_lines_hold_the_chain_and_survive_bash_quoting(tmp_path, at_root):
    args = config_args(tmp_path)
    chain = stages.sbatch_jobs(args, stages.Request(nodes=2, gpus_per_node=4, infer_shards=3))
    logs = f"{tmp_path}/{NASTY}/tiny-cpu/slurm"
    by_stage = {job.stage: job for job in chain}
    assert by_stage["preprocess"].argv() == ["sbatch", "--parsable", "--kill-on-invalid-dep=yes", "--array=0-1",
                                             f"--output={logs}/preprocess-%A_%a.out", "slurm/preprocess.sh",
                                             "--num-shards", "2", *args]
    assert by_stage["train"].argv("7") == ["sbatch", "--dependency=afterok:7", "--parsable", "--kill-on-invalid-dep=yes",
                                           "--nodes=2", "--gpus-per-node=4", f"--output={logs}/train-%j.out",
                                           "slurm/train.sh", *args]
    assert by_stage["infer"].argv("9")[3:7] == ["--kill-on-invalid-dep=yes", "--array=0-2", "--gpus-per-node=1",
                                                f"--output={logs}/infer-%A_%a.out"]
    assert by_stage["score"].argv("9")[-len(args) - 3:] == ["slurm/score.sh", "--num-shards", "3", *args]
    # What bash makes of each printed line: the very words, nothing run.
    script = "submit() { printf '%s\\n' \"$@\"; printf '\\0\\n'; }\n" + "\n".join(job.submit_line() for job in chain)
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    words = [block.strip("\n").split("\n") for block in out.split("\0")[:-1]]
    assert words == [[job.stage, job.after or "-", *job.argv()[1:]] for job in chain]
    assert not (tmp_path / "pwned").exists()
    hand = chain[1].shell_line()  # a standalone script line, waiting on the variable of the stage before
    assert hand.startswith('train=$(sbatch --dependency=afterok:"$preprocess" --parsable')
    assert shlex.split(hand.removeprefix("train=$(").removesuffix(")"))[2:] == chain[1].argv()[1:]


def test_sbatch_lines_end_with_the_bfcl_templates(tmp_path, at_root):
    args = config_args(tmp_path, "eval.bfcl_dir=tests/fixtures/bfcl")
    logs = f"{tmp_path}/{NASTY}/tiny-cpu/slurm"
    by_stage = {job.stage: job for job in stages.sbatch_jobs(args, stages.Request(gpus_per_node=4, infer_shards=3))}
    assert by_stage["bfcl-convert"].argv("5") == ["sbatch", "--dependency=afterok:5", *stages.SBATCH_ALWAYS,
                                                  f"--output={logs}/bfcl-convert-%j.out", "slurm/bfcl-convert.sh", *args]
    assert by_stage["bfcl-infer"].argv("6") == ["sbatch", "--dependency=afterok:6", *stages.SBATCH_ALWAYS, "--array=0-2",
                                                "--gpus-per-node=1", f"--output={logs}/bfcl-infer-%A_%a.out",
                                                "slurm/bfcl-infer.sh", "--num-shards", "3", *args]
    assert by_stage["bfcl-score"].argv("7")[-len(args) - 3:] == ["slurm/bfcl-score.sh", "--num-shards", "3", *args]
    assert [by_stage[name].after for name in ("bfcl-convert", "bfcl-infer", "bfcl-score")] == \
        ["score", "bfcl-convert", "bfcl-infer"]
    assert all((ROOT / job.template).is_file() for job in by_stage.values())


def test_the_bfcl_convert_task_writes_the_runs_gold_rows(tmp_path, at_root):
    args = config_args(tmp_path, "eval.bfcl_dir=tests/fixtures/bfcl")
    stages.run_task("bfcl-convert", args)
    bfcl = RunLayout.of(stages.load_job(args)).bfcl
    assert len(bfcl.gold.read_text().splitlines()) == 10
    assert json.loads(bfcl.conversion.read_text())["by_category"]["parallel"] == {"read": 2, "converted": 2}


def test_the_demo_runs_the_bfcl_stages_only_where_the_config_names_a_folder(tmp_path, at_root, monkeypatch):
    from fcdist import demo

    ran = []
    monkeypatch.setattr(demo, "run_task", lambda stage, args, shard, num_shards: ran.append((stage, shard, num_shards)))
    demo.run_chain(stages.load_job(config_args(tmp_path)), config_args(tmp_path), first="bfcl-convert")
    assert ran == []
    args = config_args(tmp_path, "eval.bfcl_dir=tests/fixtures/bfcl")
    demo.run_chain(stages.load_job(args), args, first="bfcl-convert")
    assert ran == [("bfcl-convert", 0, 1), ("bfcl-infer", 0, 2), ("bfcl-infer", 1, 2), ("bfcl-score", 0, 2)]


def test_sbatch_lines_command_refuses_an_unknown_option_and_a_bad_config(tmp_path):
    run = [sys.executable, "-m", "fcdist.stages", "sbatch-lines"]
    proc = subprocess.run(run + ["--gpus=2", "--config", TINY], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == "" and "unknown option '--gpus=2'" in proc.stderr
    proc = subprocess.run(run + ["--config", TINY, f"output.root={tmp_path}", "lora.rank=4"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == "" and "unknown key 'lora.rank'" in proc.stderr


def test_a_failing_stage_command_fails_the_task_naming_it(tmp_path, at_root):
    args = config_args(tmp_path)
    with pytest.raises(RuntimeError, match=r"`fcdist gather --run .*` exited 1"):
        stages.run_task("gather", args)  # no checkpoint yet
    proc = subprocess.run([sys.executable, "-m", "fcdist.stages", "run", "gather", *args], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "fcdist run: `fcdist gather --run" in proc.stderr


def test_the_trainer_and_the_stages_share_one_run_layout(tmp_path):
    layout, folder = RunLayout.at(tmp_path), RunFolder(tmp_path)
    assert (folder.stop_file, folder.done_file, folder.latest_pointer, folder.checkpoints) == (
        layout.stop, layout.done, layout.latest_pointer, layout.checkpoints)
    with pytest.raises(FileNotFoundError, match="merged/ or adapter/"):
        layout.gathered_model()
    (layout.gathered / "adapter").mkdir(parents=True)
    assert layout.gathered_model() == layout.gathered / "adapter"
    (layout.gathered / "merged").mkdir()
    assert layout.gathered_model() == layout.gathered / "merged"
