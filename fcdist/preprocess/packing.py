"""Pack tokenized documents into rows of ``max_length`` tokens with best-fit decreasing bin packing.

TRL's packing (``pack_dataset`` with ``bfd``) works on one dataset at a time inside the trainer; fcdist packs
in its own preprocessing stage over a whole shard, and needs the per-document bookkeeping (lengths,
position ids restarting at each document, overlong counts) in the shard itself, so it is written here.
Lengths are small integers, so bins are bucketed by free space: best fit is the first non-empty bucket at
or above a document's length, which keeps the whole shard's packing near linear time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PackStats:
    documents: int = 0
    truncated: int = 0
    dropped: int = 0
    tokens: int = 0
    rows: int = 0
    slots: int = 0

    @property
    def efficiency(self) -> float:
        """Real tokens over token slots (max_length per packed row); 1.0 means no padding at all."""
        return self.tokens / self.slots if self.slots else 0.0


def fit_overlong(docs: list[tuple[list[int], list[int]]], max_length: int, overlong: str, stats: PackStats):
    """Truncate (the seed's behaviour: keep the first max_length tokens) or drop documents that do not fit."""
    kept = []
    for input_ids, labels in docs:
        if len(input_ids) > max_length:
            if overlong == "drop":
                stats.dropped += 1
                continue
            stats.truncated += 1
            input_ids, labels = input_ids[:max_length], labels[:max_length]
        kept.append((input_ids, labels))
    return kept


def best_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Group document indices into bins of at most ``capacity`` tokens; returns the index lists.

    Ties are broken by document index, so the result is deterministic for a given input.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[int] = []
    bins_by_free: list[list[int]] = [[] for _ in range(capacity + 1)]
    for doc in order:
        size = lengths[doc]
        target = next((space for space in range(size, capacity) if bins_by_free[space]), None)
        if target is None:  # no open bin has room: open a new one
            bins.append([])
            free.append(capacity)
            b = len(bins) - 1
        else:
            b = bins_by_free[target].pop()
        bins[b].append(doc)
        free[b] -= size
        bins_by_free[free[b]].append(b)
    return bins


def build_row(docs: list[tuple[list[int], list[int]]]) -> dict:
    """One packed row: concatenated ids and labels, position ids restarting at 0 per document."""
    row = {"input_ids": [], "labels": [], "position_ids": [], "doc_lengths": []}
    for input_ids, labels in docs:
        row["input_ids"] += input_ids
        row["labels"] += labels
        row["position_ids"] += list(range(len(input_ids)))
        row["doc_lengths"].append(len(input_ids))
    return row


def pack_documents(docs, max_length: int, overlong: str, packing: bool) -> tuple[list[dict], PackStats]:
    """Documents (input_ids, labels) -> training rows and statistics; unpacked mode keeps one per row."""
    stats = PackStats(documents=len(docs))
    docs = fit_overlong(docs, max_length, overlong, stats)
    if packing:
        groups = best_fit_decreasing([len(ids) for ids, _ in docs], max_length)
    else:
        groups = [[i] for i in range(len(docs))]
    rows = [build_row([docs[i] for i in group]) for group in groups]
    stats.tokens = sum(len(ids) for ids, _ in docs)
    stats.rows = len(rows)
    stats.slots = stats.rows * max_length
    return rows, stats
