"""No silent hang: with one of two ranks stalled, the watchdog ends the job long before the collective
timeout, with every rank's stack written (`accelerate launch`, two CPU processes, gloo)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from fcdist.config import save_resolved
from fcdist.preprocess import shards
from fcdist.runtime import load_tokenizer

ROOT = Path(__file__).resolve().parents[2]
FLOOR_S = 5  # distributed.hang_min_seconds: tiny CPU steps take well under a second
# The watchdog fires FLOOR_S after the last step (polled each second), then waits for the other rank's file;
# the launcher then stops the other worker.
END_WITHIN_S = FLOOR_S + 25
LAUNCH_TIMEOUT_S = 420  # start-up limit (3 min) + the above, with room; the collective timeout is 30 min


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def short_limits_job(tiny_config_factory, name: str, *overrides: str):
    """The tiny run with a watchdog limit of FLOOR_S seconds, its shards built."""
    config = tiny_config_factory(
        f"output.name={name}", "data.max_length=256", "data.overlong=drop", "data.num_shards=1",
        "train.global_batch_size=4", "train.logging_steps=1", "distributed.timeout_minutes=30",
        f"distributed.hang_min_seconds={FLOOR_S}", "distributed.hang_startup_minutes=3",  # start-up on a busy 2-core machine
        *overrides)
    tokenizer = load_tokenizer(config)
    shards.preprocess_shard(config, 0, 1, tokenizer)
    shards.write_manifest(config, 1, tokenizer)
    return config


def launch(script: str, config, log: Path) -> int:
    """``accelerate launch`` two CPU processes of ``script --config``; the exit status."""
    command = [str(Path(sys.executable).parent / "accelerate"), "launch",
               "--config_file", "configs/accelerate/cpu_multiprocess.yaml", "--num_processes", "2",
               "--main_process_port", str(free_port()), script, "--config", str(save_resolved(config, log.with_suffix(".yaml")))]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            return proc.wait(timeout=LAUNCH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            # The workers run in sessions of their own: a hang the watchdog missed must not outlive the test.
            for process in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:
                process.kill()
            pytest.fail(f"the job still ran after {LAUNCH_TIMEOUT_S} s: a hang was not caught; log: {log}")


@pytest.mark.slow
def test_a_stalled_rank_ends_the_job_with_every_ranks_stack(tiny_config_factory, tmp_path):
    config = short_limits_job(tiny_config_factory, "stalled", "train.max_steps=50", "train.save_steps=100")
    log = tmp_path / "hang.log"
    returncode = launch("tests/helpers/stall_train.py", config, log)
    ended = time.time()
    text = log.read_text()

    assert returncode != 0, text[-3000:]
    stalled_at = float((config.run_dir / "stalled-at").read_text())
    assert ended - stalled_at < END_WITHIN_S, f"the job took {ended - stalled_at:.0f} s to end after the stall"
    (folder,) = config.run_dir.glob("hang-*")
    assert sorted(p.name for p in folder.iterdir()) == ["rank-0.txt", "rank-1.txt"]
    assert "in stall_forever" in (folder / "rank-1.txt").read_text()  # the stalled rank says where it is
    assert "in stall_forever" not in (folder / "rank-0.txt").read_text()
    assert "made no progress for" in text and f"stacks in {folder}/; exiting" in text, text[-3000:]


@pytest.mark.slow
def test_the_watchdog_stays_quiet_through_saves_and_the_end_of_a_healthy_run(tiny_config_factory, tmp_path):
    """The same short limit: saves and the run's final files take their own, longer limit."""
    config = short_limits_job(tiny_config_factory, "healthy", "train.max_steps=12", "train.save_steps=4")
    log = tmp_path / "healthy.log"
    assert launch("launch/train.py", config, log) == 0, log.read_text()[-3000:]
    assert (config.run_dir / "DONE").is_file() and not list(config.run_dir.glob("hang-*"))
