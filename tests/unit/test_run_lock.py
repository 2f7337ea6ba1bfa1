"""The run lock (fcdist/train/lock.py): one job per run folder, its holder named, dead holders taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from fcdist.errors import SetupError
from fcdist.train import lock


def write_lock(run_dir, host: str, pid: int, job: str | None = "4242", age_s: float = 0.0):
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / lock.LOCK_NAME
    path.write_text(json.dumps({"host": host, "pid": pid, "slurm_job_id": job, "started": "earlier"}))
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_lock_names_its_holder_and_is_removed_on_release(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    with lock.acquire(tmp_path / "run") as held:
        holder = json.loads((tmp_path / "run" / "LOCK").read_text())
        assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid() and holder["slurm_job_id"] == "77"
        with pytest.raises(SetupError, match=rf"host {socket.gethostname()}, pid {os.getpid()}, SLURM job 77.*LOCK"):
            lock.acquire(tmp_path / "run")  # a second start while the first runs
    assert held.path == tmp_path / "run" / "LOCK" and not held.path.exists()


def test_a_live_holder_on_another_host_is_refused_until_its_heartbeat_is_stale(tmp_path, capsys):
    write_lock(tmp_path, "node-17", 12345, age_s=lock.STALE_S - 30)
    with pytest.raises(SetupError, match="host node-17, pid 12345, SLURM job 4242"):
        lock.acquire(tmp_path)
    write_lock(tmp_path, "node-17", 12345, age_s=lock.STALE_S + 30)
    lock.acquire(tmp_path).release()
    assert "taking over" in capsys.readouterr().out


def test_a_dead_holder_on_this_host_is_taken_over_at_once(tmp_path, capsys):
    write_lock(tmp_path, socket.gethostname(), dead_pid(), job="4242")  # e.g. a SLURM requeue onto this node
    held = lock.acquire(tmp_path)
    assert json.loads(held.path.read_text())["pid"] == os.getpid()
    assert "no longer runs on this host" in capsys.readouterr().out
    held.release()


def test_release_leaves_a_lock_another_job_took_over(tmp_path):
    held = lock.acquire(tmp_path)
    write_lock(tmp_path, "node-3", 999)
    held.release()
    assert json.loads(held.path.read_text())["host"] == "node-3"


def test_the_holder_renews_its_heartbeat(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
    with lock.acquire(tmp_path) as held:
        os.utime(held.path, (0, 0))
        time.sleep(0.5)
        assert time.time() - held.path.stat().st_mtime < 5


def test_a_zombie_holder_counts_as_dead(tmp_path):
    """A killed worker whose new parent has not reaped it yet still has a pid, but no longer trains."""
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(1.0)  # exited, not waited for: a zombie until zombie.wait()
    try:
        assert not lock.pid_alive(zombie.pid) and lock.pid_alive(os.getpid())
    finally:
        zombie.wait()
