"""One job per run folder: ``runs/<name>/LOCK``, held by the job's rank 0 for as long as it trains.

Two jobs on one run folder would both resume from the same checkpoint and interleave their metrics and
checkpoints. The lock is a file created with O_CREAT|O_EXCL, which is atomic on local disks, NFSv3+ and
Lustre alike (flock is not honoured across nodes on some of them). It holds the holder's host, pid, SLURM job
id and start time, and its mtime is a heartbeat that a thread of the holder renews every HEARTBEAT_S.

A second start is refused with the holder named, unless the holder is surely dead:
- it ran on this host and its pid no longer exists (a killed job, a SLURM requeue onto the same node), or
- its heartbeat is older than STALE_S (a dead node, or a holder on another host whose pid cannot be checked).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

from fcdist.errors import SetupError

LOCK_NAME = "LOCK"
HEARTBEAT_S = 30.0
# Ten missed heartbeats. Generous because the age is read across hosts: NFS clients cache file attributes
# for up to 60 s (acregmax) and node clocks may differ by seconds; a live holder must never look stale.
STALE_S = 300.0


def is_main_process() -> bool:
    """Global rank 0 (torchrun and accelerate set RANK; a plain `fcdist train` is rank 0 alone)."""
    return int(os.environ.get("RANK", "0")) == 0


def describe(holder: dict) -> str:
    return (f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, "
            f"SLURM job {holder.get('slurm_job_id') or 'none'}, started {holder.get('started', '?')}")


class RunLock:
    """The held lock: a heartbeat thread while held, the file removed on ``release``."""

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="fcdist-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stopped.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except FileNotFoundError:  # removed by hand; nothing to renew
                pass

    def release(self) -> None:
        self._stopped.set()
        self._thread.join()
        if read_holder(self.path) == self.holder:  # never remove a lock another job has taken over since
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def read_holder(path: Path) -> dict | None:
    """The holder recorded in the lock file; {} while unreadable (being written), None when there is no lock."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs on this host; a zombie (killed, not yet reaped by its new parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (not Linux), or it exited meanwhile: os.kill's answer stands
        return True
    return state != "Z"


def dead_reason(path: Path, holder: dict) -> str | None:
    """Why the recorded holder is surely gone, or None while it may be alive."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return "it was just released"
    if age > STALE_S:
        return f"its heartbeat is {age:.0f} s old (stale after {STALE_S:.0f} s)"
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid):
        return f"pid {pid} no longer runs on this host"
    return None


def try_create(path: Path, holder: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(holder) + "\n")
    return True


def acquire(run_dir: Path) -> RunLock:
    """Take ``run_dir/LOCK`` or raise SetupError naming its live holder; take over a dead holder's lock."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    me = {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
          "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for _ in range(3):  # a lost race against another starter taking over the same dead lock
        if try_create(path, me):
            return RunLock(path, me)
        holder = read_holder(path)
        if holder is None:
            continue
        reason = dead_reason(path, holder)
        if reason is None:
            raise SetupError(f"{run_dir} is being trained by another job ({describe(holder)}; lock file {path}); "
                             "stop that job first, or train under a new output.name")
        print(f"fcdist train: taking over {path} from {describe(holder)}: {reason}")
        # Two starters that judge the same lock dead in the same instant can both get past this unlink;
        # that takes two restarts racing each other, which the lock is not meant to arbitrate.
        path.unlink(missing_ok=True)
    raise SetupError(f"{path}: could not take the lock (other jobs keep taking it); start one job at a time")
