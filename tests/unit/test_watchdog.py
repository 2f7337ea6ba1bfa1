"""The hang rule on a fake clock, the config checks, and a watchdog firing for real in a child process."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fcdist.config import ConfigError, load_config
from fcdist.train.watchdog import EXIT_CODE, HangRule

ROOT = Path(__file__).resolve().parents[2]


def steps(rule: HangRule, times: list[float]) -> None:
    for now in times:
        rule.step_done(now, saving=False)


def test_before_the_first_step_the_startup_limit_holds():
    rule = HangRule(multiple=10, floor=5, slow_limit=600)
    rule.began(0.0)
    assert rule.overdue(599.0) is None
    assert rule.overdue(601.0).startswith("made no progress for 601 s (limit 600 s = start-up")


def test_the_limit_is_a_multiple_of_the_median_step_time_but_never_below_the_floor():
    rule = HangRule(multiple=10, floor=5, slow_limit=600)
    rule.began(0.0)
    steps(rule, [300.0])  # the first step (compilation, loading) is not a step time
    assert rule.limit()[0] == 600  # nothing timed yet
    steps(rule, [302.0, 304.0, 310.0])  # 2, 2, 6 s: median 2, a slow step does not move it much
    assert rule.limit() == (20.0, "max(10 x median step 2.00 s, 5 s)")
    assert rule.overdue(330.0) is None and "no progress for 21 s (limit 20 s" in rule.overdue(331.0)
    fast = HangRule(multiple=10, floor=5, slow_limit=600)
    fast.began(0.0)
    steps(fast, [10.0, 10.1, 10.2, 10.3])
    assert fast.limit()[0] == 5  # 10 x 0.1 s would call the first hiccup a hang


def test_a_save_gets_the_startup_limit_and_is_not_a_step_time():
    rule = HangRule(multiple=10, floor=5, slow_limit=600)
    rule.began(0.0)
    steps(rule, [1.0, 2.0, 3.0])
    rule.step_done(4.0, saving=True)
    assert rule.overdue(500.0) is None  # 496 s writing a checkpoint is not a hang
    rule.saved(500.0, last=False)
    assert rule.limit()[0] == 10 and rule.overdue(511.0) is not None
    rule.step_done(501.0, saving=False)
    assert rule.limit()[0] == 10  # the save's 496 s did not enter the median
    rule.step_done(502.0, saving=True)
    rule.saved(503.0, last=True)  # the run's final files follow the last save
    assert rule.overdue(1000.0) is None and rule.overdue(1104.0) is not None


@pytest.mark.parametrize("key", ["hang_step_multiple", "hang_min_seconds", "hang_startup_minutes"])
def test_hang_limits_must_be_positive(key):
    with pytest.raises(ConfigError, match=f"'distributed.{key}' must be positive"):
        load_config(None, [f"distributed.{key}=0"])


CHILD = """
import sys, time
from pathlib import Path
from fcdist.config import DistributedConfig
from fcdist.train.watchdog import HangWatchdog

def wait_for_a_lost_peer():
    time.sleep(600)

rank, world_size, startup_minutes = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
with HangWatchdog(Path(sys.argv[1]), DistributedConfig(hang_startup_minutes=startup_minutes), rank, world_size) as watchdog:
    print(watchdog.folder, flush=True)
    wait_for_a_lost_peer()
"""


def start_child(run: Path, rank: int, world_size: int, startup_minutes: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(run), str(rank), str(world_size), str(startup_minutes)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_stuck_process_writes_its_stack_and_exits(tmp_path):
    """No progress for the (here 1.2 s) start-up limit: the stack names where the main thread waits."""
    started = time.monotonic()
    child = start_child(tmp_path, rank=0, world_size=1, startup_minutes=0.02)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == EXIT_CODE, stderr
    assert time.monotonic() - started < 60
    folder = Path(stdout.strip())
    assert [p.name for p in folder.iterdir()] == ["rank-0.txt"]
    stack = (folder / "rank-0.txt").read_text()
    assert stack.startswith("rank 0 of 1 on ") and "in wait_for_a_lost_peer" in stack
    assert re.search(r"fcdist train: rank 0 made no progress for \d+ s \(limit 1 s = start-up, save or end of "
                     rf"training\); stacks in {re.escape(str(folder))}/; exiting", stderr), stderr


def test_a_rank_writes_its_stack_as_soon_as_another_rank_reports_a_hang(tmp_path):
    """Far from its own limit (10 min), rank 1 follows rank 0's report, so the launcher cannot kill it first."""
    child = start_child(tmp_path, rank=1, world_size=2, startup_minutes=10)
    folder = Path(child.stdout.readline().strip())
    folder.mkdir()
    (folder / "rank-0.txt").write_text("rank 0's stack\n")  # what a hung rank 0 writes
    reported = time.monotonic()
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == EXIT_CODE, stderr
    assert time.monotonic() - reported < 10
    assert "in wait_for_a_lost_peer" in (folder / "rank-1.txt").read_text()
    assert f"fcdist train: rank 1 stopped with the job: another rank found it hung; stacks in {folder}/; exiting" in stderr
