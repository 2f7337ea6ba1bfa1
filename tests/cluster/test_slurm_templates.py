"""slurm/*.sh on the real local cluster (tests/cluster/conftest.py): training on both nodes, USR2 before the
time limit (save, requeue, resume to the same loss), a scancel that must not come back, a killed rank, the
whole pipeline (ending with the BFCL stages), and bad input.

Jobs are submitted from the repository root as a user would, in this test's environment (sbatch hands it
to the job), on the tiny model with runs and logs under tmp_path. About 3.5 minutes on 2 cores (the BFCL
stages: +30 s).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fcdist.cli import main as fcdist

ROOT = Path(__file__).resolve().parents[2]
TINY = "configs/jobs/tiny-cpu.yaml"
MULTINODE = "distributed.accelerate_config=configs/accelerate/multinode_cpu.yaml"
STEPS = 24


@pytest.fixture(scope="module")
def user_env():
    """A user's shell: the venv's python first on PATH. One thread per process: the two nodes share 2 cores."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        patch.setenv("OMP_NUM_THREADS", "1")
        yield


@pytest.fixture(scope="module")
def tiny(tiny_model_dir, synth_data_file) -> list[str]:
    """Overrides for the tiny model and data."""
    return [f"model.name_or_path={tiny_model_dir}", f"data.source={synth_data_file}", "output.report_to=none",
            "train.logging_steps=2"]


@pytest.fixture(scope="module")
def packed(tiny, tmp_path_factory) -> list[str]:
    """``tiny`` plus rows packed once (in this process) for every training job of this module."""
    overrides = [*tiny, f"data.packed_dir={tmp_path_factory.mktemp('packed')}"]
    assert fcdist(["preprocess", "--config", TINY, *overrides]) == 0
    return overrides


def train_args(packed: list[str], root: Path, name: str, *extra: str) -> list[str]:
    return ["--config", TINY, *packed, f"output.root={root}", f"output.name={name}", MULTINODE,
            f"train.max_steps={STEPS}", "train.save_steps=6", *extra]


def sbatch(cluster, out: Path, template: str, *args: str, options: tuple[str, ...] = ()) -> int:
    """sbatch [options] slurm/<template>.sh args, with SLURM's own --output in ``out`` (the job logs into its run
    folder): slurm-<job>.out, or slurm-<array job>_<task>.out for each task of an array."""
    name = "slurm-%A_%a.out" if any(option.startswith("--array") for option in options) else "slurm-%j.out"
    return cluster.sbatch([f"--output={out}/{name}", *options, f"slurm/{template}.sh", *args], cwd=ROOT)


def logs(run: Path) -> str:
    return "".join(p.read_text() for p in sorted((run / "slurm").glob("*.out")))


def wait_for(what: str, ready, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while not (value := ready()):
        assert time.monotonic() < deadline, f"no {what} after {timeout_s}s"
        time.sleep(0.2)
    return value


def logged_steps(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines()] if path.exists() else []


def job_processes(job: int, node_id: str | None = None) -> dict[int, list[str]]:
    """pid -> command line of this machine's processes that belong to the job (on one node, if given)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = dict(kv.split("=", 1) for kv in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in kv)
            cmdline = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        except OSError:
            continue
        if env.get("SLURM_JOB_ID") == str(job) and node_id in (None, env.get("SLURM_NODEID")):
            found[int(pid)] = cmdline
    return found


@pytest.fixture(scope="module")
def reference(slurm_cluster, user_env, packed, tmp_path_factory):
    """An uninterrupted run on both nodes: (job id, final state, run folder, SLURM's --output folder)."""
    root = tmp_path_factory.mktemp("reference")
    job = sbatch(slurm_cluster, root, "train", *train_args(packed, root, "reference"), options=("--nodes=2",))
    return job, slurm_cluster.wait(job, 240), root / "reference", root


def test_training_uses_both_nodes(slurm_cluster, reference):
    job, state, run, out = reference
    assert state == "COMPLETED", logs(run) or (out / f"slurm-{job}.out").read_text()
    steps = {row["JobID"]: row for row in slurm_cluster.sacct(job)}
    assert (steps[f"{job}.0"]["State"], steps[f"{job}.0"]["NodeList"]) == ("COMPLETED", "fcnode[1-2]")
    manifest = json.loads((run / "manifest.json").read_text())
    assert (manifest["world_size"], manifest["step"]) == (2, STEPS)  # one CPU process per node
    assert (run / "DONE").is_file() and (run / "checkpoints" / "latest").read_text().strip() == f"step-{STEPS}"
    assert (run / "checkpoints" / f"step-{STEPS}" / "adapter_model.safetensors").is_file()
    # The job logs into its run folder; SLURM's own --output says where.
    log = run / "slurm" / f"train-{job}.out"
    assert f"fcdist: log: {log}" in (out / f"slurm-{job}.out").read_text()
    assert "fcdist node 0 of 2" in log.read_text() and "fcdist node 1 of 2" in log.read_text()


def test_usr2_saves_requeues_and_resumes_to_the_same_loss(slurm_cluster, reference, packed, tmp_path):
    job = sbatch(slurm_cluster, tmp_path, "train", *train_args(packed, tmp_path, "preempted"), options=("--nodes=2",))
    run = tmp_path / "preempted"
    wait_for("step 4", lambda: 4 in logged_steps(run), 120)
    # What --signal=B:USR2@300 sends before the time limit.
    slurm_cluster.run("scancel", "--signal=USR2", "--batch", str(job))
    assert slurm_cluster.wait(job, 300) == "COMPLETED", logs(run)
    text = logs(run)
    assert "SIGUSR2" in text and "requeued" in text and f"job {job} (restart 1)" in text
    saved = re.search(r"stopped, resumable at step (\d+)", text)
    assert saved and f"resuming from {run}/checkpoints/step-{saved[1]}" in text, text
    assert logged_steps(run) == list(range(2, STEPS + 1, 2))  # every step logged once across the restart
    reference_loss = json.loads((reference[2] / "manifest.json").read_text())["final_loss"]
    assert json.loads((run / "manifest.json").read_text())["final_loss"] == pytest.approx(reference_loss, abs=1e-5)
    assert not (run / "STOP").exists()


def test_a_user_scancel_is_not_requeued(slurm_cluster, user_env, packed, tmp_path):
    """scancel sends SIGTERM as preemption does; the trap may save, but must not bring the job back."""
    job = sbatch(slurm_cluster, tmp_path, "train", *train_args(packed, tmp_path, "cancelled", "train.max_steps=400"),
                 options=("--nodes=2",))
    run = tmp_path / "cancelled"
    wait_for("step 2", lambda: logged_steps(run), 120)
    slurm_cluster.run("scancel", str(job))
    assert slurm_cluster.wait(job, 60) == "CANCELLED"
    assert "SIGTERM" in logs(run) and "requeued" not in logs(run)
    queued = lambda: slurm_cluster.run("squeue", "-h", "-j", str(job), "-o", "%T", check=False).stdout.strip()
    wait_for("the job to leave the queue", lambda: queued() != "COMPLETING", 60)
    assert queued() == ""  # a requeued job would be PENDING again


def test_a_killed_rank_ends_the_job_and_a_resubmission_resumes(slurm_cluster, user_env, packed, tmp_path):
    args = train_args(packed, tmp_path, "killed", "train.max_steps=60", "train.save_steps=5")
    job = sbatch(slurm_cluster, tmp_path, "train", *args, options=("--nodes=2",))
    run = tmp_path / "killed"
    wait_for("a checkpoint", (run / "checkpoints" / "latest").is_file, 120)
    workers = wait_for("node 1's worker", lambda: [pid for pid, cmd in job_processes(job, "1").items()
                                                   if "launch/train.py" in cmd and "accelerate.commands.launch" not in cmd], 30)
    killed = time.monotonic()
    os.kill(workers[0], signal.SIGKILL)
    assert slurm_cluster.wait(job, 60) == "FAILED"
    assert time.monotonic() - killed < 60
    assert job_processes(job) == {}  # no rank left behind on either node
    latest = (run / "checkpoints" / "latest").read_text().strip()

    again = sbatch(slurm_cluster, tmp_path, "train", *args, options=("--nodes=2",))
    assert slurm_cluster.wait(again, 240) == "COMPLETED", logs(run)
    assert f"resuming from {run}/checkpoints/{latest}" in (run / "slurm" / f"train-{again}.out").read_text()
    assert json.loads((run / "manifest.json").read_text())["step"] == 60


def test_pipeline_runs_every_stage(slurm_cluster, user_env, tiny, bfcl, tmp_path):
    """Every stage, ending with the BFCL ones (eval.bfcl_dir) on the hand-written BFCL folder."""
    args = ["--config", TINY, *tiny, f"output.root={tmp_path}", MULTINODE, "train.max_steps=10", "train.save_steps=5",
            bfcl.override]
    proc = subprocess.run(["slurm/pipeline.sh", "--nodes=2", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    jobs = dict(line.split() for line in proc.stdout.splitlines()[1:-1])
    assert list(jobs) == ["preprocess", "train", "gather", "infer", "score", "bfcl-convert", "bfcl-infer", "bfcl-score"]
    run = tmp_path / "tiny-cpu"
    assert slurm_cluster.wait(int(jobs["bfcl-score"]), 540) == "COMPLETED", logs(run)
    for stage, job in jobs.items():
        rows = [row for row in slurm_cluster.sacct(int(job)) if "." not in row["JobID"]]
        assert rows and all(row["State"] == "COMPLETED" for row in rows), (stage, rows)
    assert slurm_cluster.sacct(int(jobs["train"]))[0]["NodeList"] == "fcnode[1-2]"
    report = json.loads((run / "score" / "report.json").read_text())
    heldout = (run / "packed" / "heldout.jsonl").read_text().splitlines()
    assert len((run / "predictions.jsonl").read_text().splitlines()) == len(heldout) > 0
    gold_ids = [json.loads(line)["id"] for line in heldout]
    assert sorted(row["id"] for row in report["per_row"]) == sorted(gold_ids)  # every held-out row scored once
    assert report["n"] == len(heldout) and 0 <= report["exact_match"] <= report["name_accuracy"] <= report["parse_rate"] <= 1
    bfcl.check(run)
    names = sorted(p.name for p in (run / "slurm").iterdir())
    assert names == sorted([f"preprocess-{jobs['preprocess']}_0.out", f"preprocess-{jobs['preprocess']}_1.out",
                            f"train-{jobs['train']}.out", f"gather-{jobs['gather']}.out",
                            f"infer-{jobs['infer']}_0.out", f"infer-{jobs['infer']}_1.out", f"score-{jobs['score']}.out",
                            f"bfcl-convert-{jobs['bfcl-convert']}.out", f"bfcl-infer-{jobs['bfcl-infer']}_0.out",
                            f"bfcl-infer-{jobs['bfcl-infer']}_1.out", f"bfcl-score-{jobs['bfcl-score']}.out"])


def test_bad_input_fails_at_once_with_the_reason_in_the_log(slurm_cluster, user_env, tiny, tmp_path):
    base = [*tiny, f"output.root={tmp_path}"]
    cases = {  # (template, sbatch options, arguments): what the job's log must say
        ("train", (), ("--config", "configs/jobs/missing.yaml")): "no such file: configs/jobs/missing.yaml",
        ("train", (), ("--config", TINY, *base, "train.max_stepz=3")): "unknown key 'train.max_stepz'",
        ("preprocess", ("--array=0-1",), ("--config", TINY, *base, "data.max_length=big")): "'data.max_length' = 'big' is invalid",
        ("gather", (), ("--config", TINY, *base, "lora.rank=4")): "unknown key 'lora.rank'",
        ("infer", ("--array=0-1",), ("--config", TINY, *base, "infer.batchsize=4")): "unknown key 'infer.batchsize'",
        ("score", (), ("--config", TINY, *base, "score.x=1")): "unknown key 'score'",
        ("train", ("--nodes=2",), ("--config", TINY, *base)): "one-machine Accelerate config",
        ("preprocess", ("--array=2",), ("--num-shards", "2", "--config", TINY, *base)): "array task 2 is outside the 2 shard(s)",
    }
    submitted = {case: sbatch(slurm_cluster, tmp_path, case[0], *case[2], options=case[1]) for case in cases}
    started = time.monotonic()
    for (template, options, args), job in submitted.items():
        array = next((option.split("=")[1] for option in options if option.startswith("--array=")), None)
        first, _, last = array.partition("-") if array else ("", "", "")
        tasks = [f"{job}_{i}" for i in range(int(first), int(last or first) + 1)] if array else [str(job)]
        for task in tasks:  # every task of an array fails alike, each in its own log
            assert slurm_cluster.wait(task, 60) == "FAILED", (template, args, task)
            out = (tmp_path / f"slurm-{task}.out").read_text()
            assert cases[template, options, args] in out, (template, args, out)
    assert time.monotonic() - started < 60


def test_impossible_requests_are_refused_at_submission(slurm_cluster, user_env, tiny, tmp_path):
    args = ["--config", TINY, *tiny, f"output.root={tmp_path}", MULTINODE]
    with pytest.raises(RuntimeError, match="Requested node configuration is not available"):
        sbatch(slurm_cluster, tmp_path, "train", *args, options=("--gpus-per-node=3",))  # the nodes have 2
    # More nodes than the partition has: refused by sbatch here (EnforcePartLimits=ALL, as on many real
    # clusters); where limits are not enforced the job would pend for ever, so the pipeline asks SLURM
    # first (sbatch --test-only) and submits nothing.
    with pytest.raises(RuntimeError, match="not available|Node count specification invalid|exceeds"):
        sbatch(slurm_cluster, tmp_path, "train", *args, options=("--nodes=3",))
    proc = subprocess.run(["slurm/pipeline.sh", "--nodes=4", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout  # 4 split the batch of 8, so fcdist plan lets SLURM answer
    assert "cannot run the training job as asked (--nodes=4)" in proc.stderr
    assert re.search("Requested node configuration is not available|Node count specification invalid", proc.stderr)
    assert "preprocess" not in proc.stdout and "cancelled" not in proc.stderr
