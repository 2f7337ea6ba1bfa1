"""A checkpoint save that runs out of disk space ends the run with one line naming the folder.

Without this, torch.save reports a full disk as "unexpected pos 529472 vs 529360" (its zip writer noticing a
short write) and safetensors as an IoError, in a traceback. The half-written folder is removed (it is in
``checkpoints/.incomplete``, never published), so ``checkpoints/latest`` still names the previous complete
checkpoint and a rerun, once space is freed, resumes from it.
"""

from __future__ import annotations

import errno
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fcdist.errors import InputError

# How a full disk shows in the messages of writers that do not raise OSError(ENOSPC): torch's zip writer
# (a short write, then a position check), safetensors' Rust IoError, Python's own text.
DISK_FULL_SIGNS = ("No space left on device", "unexpected pos", "file write failed", "StorageFull")


def is_disk_full(error: BaseException | None) -> bool:
    """Whether ``error``, or an error it was raised from, is a write that found the disk full."""
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if any(sign in str(error) for sign in DISK_FULL_SIGNS):
            return True
        error = error.__cause__ or error.__context__
    return False


@contextmanager
def disk_full_reported(folder: Path) -> Iterator[None]:
    """Run a save into ``folder``; a full disk becomes an InputError naming it, and the partial folder is removed."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - only a full disk is turned into the one-line error; the rest re-raise
        if not is_disk_full(e):
            raise
        shutil.rmtree(folder, ignore_errors=True)  # frees what the partial checkpoint took
        raise InputError(f"{folder}: the disk is full, the checkpoint could not be saved "
                         f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); checkpoints/latest still names "
                         "the previous complete checkpoint: free space and rerun to resume from it") from None
