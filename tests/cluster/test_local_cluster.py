"""The local cluster is a real SLURM: two nodes, srun steps, accounting, fake GPUs.

Run: `pytest -q tests/cluster/test_local_cluster.py` as root (see conftest.py); about 15 s once the
cluster is up. If these fail, every other test in tests/cluster is suspect.
"""

import pytest


def submit(cluster, tmp_path, name, body, *sbatch_args):
    """Write a batch script, submit it with its log in tmp_path; returns (job id, log path)."""
    script = tmp_path / f"{name}.sh"
    script.write_text("#!/bin/bash\nset -e\n" + body)
    log = tmp_path / f"{name}.out"
    job = cluster.sbatch([f"--job-name={name}", f"--output={log}", "--time=5", *sbatch_args, str(script)], cwd=tmp_path)
    return job, log


def test_two_nodes_one_task_each(slurm_cluster, tmp_path):
    assert len(slurm_cluster.nodes) == 2, slurm_cluster.nodes
    job, log = submit(slurm_cluster, tmp_path, "twonodes", 'srun bash -c \'echo "$SLURM_NODEID $SLURMD_NODENAME"\'\n',
                      "--nodes=2", "--ntasks-per-node=1")
    assert slurm_cluster.wait(job, 60) == "COMPLETED", log.read_text() if log.exists() else "no log"
    # One task per node: node ids 0 and 1, on the two nodes in order.
    assert sorted(log.read_text().splitlines()) == [f"0 {slurm_cluster.nodes[0]}", f"1 {slurm_cluster.nodes[1]}"]

    rows = {r["JobID"]: r for r in slurm_cluster.sacct(job)}
    assert {str(job), f"{job}.batch", f"{job}.0"} <= set(rows), rows
    for row in rows.values():
        assert (row["State"], row["ExitCode"]) == ("COMPLETED", "0:0"), row
    assert rows[f"{job}.0"]["NodeList"] == "fcnode[1-2]"  # the srun step ran on both nodes
    assert rows[f"{job}.batch"]["NodeList"] == slurm_cluster.nodes[0]  # the batch shell on the first


def test_failing_job_is_failed_with_its_exit_code(slurm_cluster, tmp_path):
    job, _ = submit(slurm_cluster, tmp_path, "fails", "echo about to fail\nexit 3\n")
    assert slurm_cluster.wait(job, 60) == "FAILED"
    rows = {r["JobID"]: r for r in slurm_cluster.sacct(job)}
    assert (rows[str(job)]["State"], rows[str(job)]["ExitCode"]) == ("FAILED", "3:0"), rows
    assert rows[f"{job}.batch"]["State"] == "FAILED"


def test_fake_gpus_are_allocated(slurm_cluster, tmp_path):
    if slurm_cluster.gpus_per_node < 1:
        pytest.skip("cluster was started without --gpus")
    job, log = submit(slurm_cluster, tmp_path, "gpus", 'echo "$SLURM_GPUS_ON_NODE $CUDA_VISIBLE_DEVICES"\n',
                      "--nodes=1", "--gpus-per-node=1")
    assert slurm_cluster.wait(job, 60) == "COMPLETED", log.read_text() if log.exists() else "no log"
    assert log.read_text().split() == ["1", "0"]
