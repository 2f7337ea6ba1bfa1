"""Training workers die with their launcher.

torchrun (under ``accelerate launch``) starts each worker in its own session, so killing the launcher's process
group leaves the workers training on as orphans, and a restart would then overlap them. A worker therefore
asks the kernel (Linux ``prctl(PR_SET_PDEATHSIG)``) for SIGKILL when its parent, the torchrun agent, dies.

SIGKILL, not fcdist's graceful SIGTERM stop: with the agent gone its rendezvous store is gone too, so a save
that needs collectives could hang and keep the orphan alive. The latest complete checkpoint is intact
(checkpoints are published atomically) and a restart resumes from it; the dead rank 0's run lock is taken
over because its pid is gone (fcdist/train/lock.py).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def launched_by_agent() -> bool:
    """A worker of torchrun (which `accelerate launch` runs in-process); a plain `fcdist train` has no launcher."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def die_with_launcher() -> None:
    """In a launched worker on Linux: be killed when the launcher dies. Called first thing in launch/train.py,
    before the seconds of importing torch, so a launcher killed meanwhile is noticed too."""
    if not (launched_by_agent() and sys.platform.startswith("linux")):
        return
    launcher = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The death signal is armed only from here on: a launcher that died before it is seen as a new parent.
    # (Not "parent is pid 1": in a container torchrun may itself be pid 1.)
    if os.getppid() != launcher:
        os.kill(os.getpid(), signal.SIGKILL)
