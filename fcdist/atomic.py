"""Atomic writes: a reader, or a rerun after a kill, sees the old file or folder or the new one, never half.

Everything is written beside its destination (same file system, so ``os.replace`` is a rename) and
renamed only once complete.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write a file to; it becomes ``path`` only if the block ends
    without an exception, and is removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def replace_dir(built: Path, final: Path) -> None:
    """Swap the finished folder ``built`` in as ``final``; an old one is moved aside first and deleted only
    once the swap is done, so ``final`` is never missing its complete contents."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(built, final)
    shutil.rmtree(old, ignore_errors=True)
