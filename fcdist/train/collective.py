"""Collectives every rank of a training job calls together; each is a no-op in a single process.

Its own module so the trainer and the hang watchdog it starts can both use them without importing each other.
"""

from __future__ import annotations

import torch.distributed as dist


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if distributed():
        dist.barrier()


def broadcast_from_main(value):
    """Rank 0's ``value`` on every rank (a collective: every rank must call it)."""
    if not distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
