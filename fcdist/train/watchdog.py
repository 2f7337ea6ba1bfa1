"""No silent hang: a rank that stops completing steps ends the job with every rank's Python stack.

A stuck collective, a dead file system or a deadlock would otherwise hold every GPU until the collective
timeout (``distributed.timeout_minutes``). Each rank runs a daemon thread that compares the time since its
last completed step with a limit (``HangRule``); past it the thread writes this rank's stack, all threads,
with ``faulthandler`` (which works while the main thread is blocked in C inside a collective, or spins in
Python), prints one line and ends the process with exit code 3, so the launcher stops the other workers
and SLURM sees a failed step (requeue or fail) instead of a job that sits there.

    runs/<name>/hang-<T>/rank-<r>.txt      one per rank: what it was doing

``<T>`` is rank 0's UTC time when training began, agreed by broadcast while every rank still answers, so all
ranks write into one folder without talking to each other once something is stuck (an attempt hangs at most
once: it exits). In synchronous training every rank stops completing steps when one stalls, so each rank's
own thread fires at about the same time; and so that no rank is killed by the launcher before it has written
its stack, every rank's thread also watches for the folder: when any rank has created it, the others write
theirs at once, and the first waits (up to ``GRACE_SECONDS``) for all of them before exiting.
"""

from __future__ import annotations

import faulthandler
import os
import socket
import statistics
import sys
import threading
import time
from collections import deque
from pathlib import Path

from accelerate.utils import broadcast_object_list
from transformers import TrainerCallback

from fcdist.config import DistributedConfig

EXIT_CODE = 3
POLL_SECONDS = 1.0
# Time for the other ranks to see the folder and write theirs, and for a slow shared file system to answer;
# a rank whose file system does not answer in this time writes its stack to stderr instead.
GRACE_SECONDS = 30.0
STEP_WINDOW = 50  # recent steps whose median is "the step time"; a slow phase of training moves it within them


class HangRule:
    """When a rank counts as hung: no completed step for max(multiple x median step time, floor) seconds
    while training, or for ``slow_limit`` seconds in a slow phase: before the first step (loading,
    compilation, resuming), from a step that saves until its save is published, and after the last save.

    Step times are the intervals between completed steps outside slow phases (the first step after start-up,
    with its compilation, is not one). Called from the training thread and read by the watchdog's: locked.
    """

    def __init__(self, multiple: float, floor: float, slow_limit: float):
        self.multiple, self.floor, self.slow_limit = multiple, floor, slow_limit
        self.durations: deque[float] = deque(maxlen=STEP_WINDOW)
        self.mark = 0.0
        self.slow = True
        self.lock = threading.Lock()

    def began(self, now: float) -> None:
        """Start-up: nothing timed yet."""
        with self.lock:
            self.mark, self.slow = now, True

    def step_done(self, now: float, saving: bool) -> None:
        with self.lock:
            if not self.slow:
                self.durations.append(now - self.mark)
            self.mark, self.slow = now, saving

    def saved(self, now: float, last: bool) -> None:
        """A checkpoint is published; after the last one, training ends (a slow phase: the run's final files)."""
        with self.lock:
            self.mark, self.slow = now, last

    def limit(self) -> tuple[float, str]:
        """The limit in seconds and how it was reached, for the log."""
        with self.lock:
            if self.slow or not self.durations:
                return self.slow_limit, "start-up, save or end of training"
            median = statistics.median(self.durations)
        limit = max(self.multiple * median, self.floor)
        return limit, f"max({self.multiple:g} x median step {median:.2f} s, {self.floor:g} s)"

    def overdue(self, now: float) -> str | None:
        """Why this rank is hung at ``now``, or None while it is not."""
        limit, how = self.limit()
        with self.lock:
            elapsed = now - self.mark
        if elapsed <= limit:
            return None
        return f"made no progress for {elapsed:.0f} s (limit {limit:.0f} s = {how})"


class HangWatchdog(TrainerCallback):
    """The rule fed by the Trainer's step and save events, and the threads that act on it.

    Use it as a context manager around ``trainer.train()``: entering agrees on the folder and starts watching
    (start-up counts from there), leaving stops it however training ends, so an in-process caller that catches
    an exception is never killed later.
    """

    def __init__(self, run_dir: Path, config: DistributedConfig, rank: int, world_size: int):
        self.run_dir, self.rank, self.world_size = run_dir, rank, world_size
        self.rule = HangRule(config.hang_step_multiple, config.hang_min_seconds, config.hang_startup_minutes * 60)
        self.folder = run_dir / "hang"  # named for real on entering
        self.stopped = threading.Event()
        self.peer_fired = threading.Event()

    def __enter__(self) -> HangWatchdog:
        began = broadcast_object_list([time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())])[0]  # rank 0's
        self.folder = self.run_dir / f"hang-{began}"
        self.rule.began(time.monotonic())
        threading.Thread(target=self._watch, name="fcdist-hang-watchdog", daemon=True).start()
        # Its own thread: on a dead file system looking at the folder blocks, and the clock must still be watched.
        threading.Thread(target=self._watch_peers, name="fcdist-hang-peers", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()

    def on_step_end(self, args, state, control, **kwargs):
        # Listed after RunCallback, whose stop request may have asked for a save.
        self.rule.step_done(time.monotonic(), saving=control.should_save)

    def on_save(self, args, state, control, **kwargs):
        self.rule.saved(time.monotonic(), last=control.should_training_stop)

    def _watch(self) -> None:
        while not self.stopped.wait(POLL_SECONDS):
            reason = self.rule.overdue(time.monotonic())
            if reason is None and self.peer_fired.is_set():
                reason = "stopped with the job: another rank found it hung"
            if reason is not None and not self.stopped.is_set():
                self._fire(reason)

    def _watch_peers(self) -> None:
        while not self.stopped.wait(POLL_SECONDS):
            if self.folder.is_dir():
                self.peer_fired.set()
                return

    def _fire(self, reason: str) -> None:
        written = threading.Event()
        writer = threading.Thread(target=self._write_stacks, args=(reason, written), daemon=True)
        writer.start()
        writer.join(GRACE_SECONDS)
        if written.is_set():
            where = f"stacks in {self.folder}/"
        else:
            where = f"{self.folder} could not be written in {GRACE_SECONDS:g} s; this rank's stack follows"
        print(f"fcdist train: rank {self.rank} {reason}; {where}; exiting", file=sys.stderr, flush=True)
        if not written.is_set():
            faulthandler.dump_traceback(sys.stderr, all_threads=True)
        os._exit(EXIT_CODE)  # the main thread is stuck: no exception could reach it

    def _write_stacks(self, reason: str, written: threading.Event) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"rank-{self.rank}.txt", "w") as f:
            f.write(f"rank {self.rank} of {self.world_size} on {socket.gethostname()} (pid {os.getpid()}) {reason}\n\n")
            f.flush()  # faulthandler writes to the file descriptor, past Python's buffer
            faulthandler.dump_traceback(f, all_threads=True)
        written.set()
        while len(list(self.folder.glob("rank-*.txt"))) < self.world_size:  # the caller's join bounds the wait
            time.sleep(0.2)
