"""`fcdist submit` (submitit) on the real local cluster: the whole chain with an interrupted-and-requeued
training job on both nodes, a request SLURM cannot meet refused before anything is submitted, and the same
chain on the local executor. The chain on SLURM ends with the BFCL stages (eval.bfcl_dir). Run as a user
would, from the repository root; about 3 minutes on 2 cores (the BFCL stages: +35 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY = "configs/jobs/tiny-cpu.yaml"
MULTINODE = "distributed.accelerate_config=configs/accelerate/multinode_cpu.yaml"


def fcdist_submit(*args: str) -> subprocess.CompletedProcess:
    # One thread per process: the two nodes share this machine's 2 cores.
    return subprocess.run([sys.executable, "-m", "fcdist.cli", "submit", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))


def test_submitit_chain_with_an_interrupted_training_job(slurm_cluster, tiny_model_dir, synth_data_file, bfcl,
                                                         tmp_path):
    overrides = [f"model.name_or_path={tiny_model_dir}", f"data.source={synth_data_file}", f"output.root={tmp_path}",
                 "output.report_to=none", MULTINODE, "train.max_steps=24", "train.save_steps=6", "train.logging_steps=2",
                 bfcl.override]
    proc = fcdist_submit("--cluster", "slurm", "--nodes", "2", "--timeout-min", "10", "--config", TINY, *overrides)
    assert proc.returncode == 0, proc.stderr
    jobs = {stage: ids.split() for stage, ids in (line.split(": ") for line in proc.stdout.splitlines())}
    assert list(jobs) == ["preprocess", "train", "gather", "infer", "score", "bfcl-convert", "bfcl-infer", "bfcl-score"]
    assert len(jobs["preprocess"]) == 2 and len(jobs["infer"]) == len(jobs["bfcl-infer"]) == 2  # data.num_shards, --infer-shards
    run, (train,) = tmp_path / "tiny-cpu", jobs["train"]

    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):  # step 4 logged
        assert time.monotonic() < deadline, "training did not reach step 4"
        time.sleep(0.2)
    # What submitit's --signal=USR2@300 (stages.PREEMPT_MARGIN_S) sends before the time limit (or a preemption does).
    slurm_cluster.run("scancel", "--signal=USR2", train)

    assert slurm_cluster.wait(int(jobs["bfcl-score"][0]), 540) == "COMPLETED", proc.stdout
    for stage, ids in jobs.items():
        for job in ids:  # wait(): accounting may still be recording a job a moment after the chain ended
            assert slurm_cluster.wait(job, 30) == "COMPLETED", (stage, job, slurm_cluster.sacct(job))
    assert slurm_cluster.sacct(int(train))[0]["NodeList"] == "fcnode[1-2]", slurm_cluster.sacct(int(train))
    logs = "".join(p.read_text() for p in sorted((run / "submitit" / train).glob("*_log.*")))  # both nodes' tasks
    for expected in ("Requeued job", f"resuming from {run}/checkpoints/step-", "DONE at step 24"):
        assert expected in logs, logs
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == list(range(2, 25, 2))  # every step logged once across the requeue
    assert json.loads((run / "manifest.json").read_text())["world_size"] == 2
    assert (run / "score" / "report.json").is_file()
    assert len((run / "predictions.jsonl").read_text().splitlines()) == len((run / "packed" / "heldout.jsonl").read_text().splitlines())
    bfcl.check(run)


def test_submitit_refuses_what_cannot_run_before_submitting(slurm_cluster, tmp_path):
    # 4 nodes split the batch of 8 (fcdist plan accepts it) but the cluster has 2: SLURM's probe refuses
    proc = fcdist_submit("--nodes", "4", "--config", TINY, f"output.root={tmp_path}", MULTINODE)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "cannot run the training job as asked (--nodes=4" in proc.stderr
    # 3 nodes cannot split it: fcdist plan's refusal, before SLURM is asked
    proc = fcdist_submit("--nodes", "3", "--config", TINY, f"output.root={tmp_path}", MULTINODE)
    assert proc.returncode == 1 and "train.global_batch_size=8 cannot be split evenly over 3 processes" in proc.stderr
    proc = fcdist_submit("--config", TINY, f"output.root={tmp_path}", "train.max_stepz=3")
    assert proc.returncode == 1 and "unknown key 'train.max_stepz'" in proc.stderr
    assert not (tmp_path / "tiny-cpu" / "submitit").exists()


def test_local_executor_runs_the_chain_on_this_machine(tiny_model_dir, synth_data_file, tmp_path):
    """--cluster local needs no SLURM: each stage waits for the one before; training runs the Accelerate
    config's own processes, as `fcdist demo` does."""
    proc = fcdist_submit("--cluster", "local", "--config", TINY, f"model.name_or_path={tiny_model_dir}",
                         f"data.source={synth_data_file}", f"output.root={tmp_path}", "output.report_to=none",
                         "train.max_steps=4", "train.save_steps=2")
    assert proc.returncode == 0, proc.stderr
    assert [line.split(":")[0] for line in proc.stdout.splitlines()] == ["preprocess", "train", "gather", "infer", "score"]
    run = tmp_path / "tiny-cpu"
    assert json.loads((run / "manifest.json").read_text())["world_size"] == 2  # cpu_multiprocess.yaml
    assert (run / "DONE").is_file() and (run / "score" / "report.json").is_file()
