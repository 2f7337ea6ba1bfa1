"""Pack tokenized documents into rows of ``max_length`` tokens with best-fit decreasing bin packing.

Written here, not TRL's ``pack_dataset(..., "bfd")``, measured side by side (bench/packing_vs_trl.py, 60,000
synthetic documents at 512; tests/unit/test_packing.py holds the differences): on the documents fcdist keeps,
TRL's bfd over the whole shard packs no tighter (same row count) and never splits a document either, but by
itself it packs the 10,354 documents that truncation left without a loss token as rows that train nothing,
its default batches of 1000 pack each batch apart (40,956 rows against 30,442), ``bfd_split`` splits every
overlong document, and it needs fcdist's overlong handling, counts and position ids around it anyway while
importing torch into preprocessing (~4 s per process). Tried as the packer (same documents, rows assigned
differently), the CPU demo's trained model fell from 45% to 2% parse rate on the same data at a slightly
higher final loss (1.708 against 1.625): the demo is that sensitive to batch composition, so the switch was
not kept this time. Lengths are small integers, so bins are bucketed by free space: best fit is the first
non-empty bucket at or above a document's length, which keeps the whole shard's packing near linear time.
Lengths are small integers, so bins are bucketed by free space: best fit is the first non-empty bucket at
or above a document's length, which keeps the whole shard's packing near linear time.
"""

from __future__ import annotations

from dataclasses import dataclass

from fcdist.preprocess.tokenize import IGNORE_INDEX

# What happens to one document against max_length (fit_document's outcome)
FITS, TRUNCATED, DROPPED_OVERLONG, DROPPED_NO_LOSS = "fits", "truncated", "dropped", "dropped_no_loss"


def count_loss_tokens(labels: list[int]) -> int:
    return sum(label != IGNORE_INDEX for label in labels)


@dataclass
class PackStats:
    documents: int = 0
    truncated: int = 0
    """Documents cut to max_length and kept; ``partial_loss`` of them lost some of their loss tokens."""
    partial_loss: int = 0
    dropped: int = 0
    """Overlong documents dropped under ``overlong: drop``."""
    dropped_no_loss: int = 0
    """Documents that truncation would leave without a single loss token: never packed, they would only waste rows."""
    loss_tokens: int = 0
    """Loss-carrying tokens in the packed rows (after truncation)."""
    loss_tokens_lost: int = 0
    """Loss-carrying tokens cut off or dropped because documents did not fit max_length."""
    tokens: int = 0
    rows: int = 0
    slots: int = 0

    @property
    def kept(self) -> int:
        return self.documents - self.dropped - self.dropped_no_loss

    @property
    def lost_loss_documents(self) -> int:
        """Documents that train on fewer tokens than they carry (cut, or dropped because of their length)."""
        return self.partial_loss + self.dropped + self.dropped_no_loss

    @property
    def efficiency(self) -> float:
        """Packed tokens over token slots (max_length per packed row); 1.0 means no padding at all. Every packed
        token is trained on or attended to by a trained token, since documents without loss are never packed."""
        return self.tokens / self.slots if self.slots else 0.0


def fit_document(input_ids: list[int], labels: list[int], max_length: int, overlong: str):
    """(input_ids, labels, outcome): the document as it is trained on, or ``None, None, DROPPED_*``.

    Truncation keeps the first max_length tokens (the seed's behaviour); since loss sits at the end of a
    document, it is what truncation cuts first, and a document left with none is dropped instead of packed.
    """
    if len(input_ids) <= max_length:
        return input_ids, labels, FITS
    if overlong == "drop":
        return None, None, DROPPED_OVERLONG
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    if count_loss_tokens(labels) == 0:
        return None, None, DROPPED_NO_LOSS
    return input_ids, labels, TRUNCATED


def fit_overlong(docs: list[tuple[list[int], list[int]]], max_length: int, overlong: str, stats: PackStats):
    """Documents as trained on: those that fit, truncated ones that keep some loss; the rest counted and dropped."""
    kept = []
    for input_ids, labels in docs:
        fitted_ids, fitted_labels, outcome = fit_document(input_ids, labels, max_length, overlong)
        loss_before = count_loss_tokens(labels)
        loss_after = count_loss_tokens(fitted_labels) if fitted_labels is not None else 0
        stats.loss_tokens += loss_after
        stats.loss_tokens_lost += loss_before - loss_after
        if outcome == DROPPED_OVERLONG:
            stats.dropped += 1
        elif outcome == DROPPED_NO_LOSS:
            stats.dropped_no_loss += 1
        elif outcome == TRUNCATED:
            stats.truncated += 1
            stats.partial_loss += loss_after < loss_before
        if fitted_ids is not None:
            kept.append((fitted_ids, fitted_labels))
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


def length_summary(length_counts: dict[int, int], max_length: int) -> dict:
    """Document lengths before truncation against max_length: how many are over it, median, p90, longest."""
    total = sum(length_counts.values())
    if not total:
        return {"documents": 0, "over_max_length": 0, "share_over": 0.0, "p50": 0, "p90": 0, "max": 0}
    ordered = sorted(length_counts.items())

    def percentile(q: float) -> int:
        rank, seen = q * (total - 1), 0
        for length, count in ordered:
            seen += count
            if seen > rank:
                return length
        return ordered[-1][0]

    over = sum(count for length, count in ordered if length > max_length)
    return {"documents": total, "over_max_length": over, "share_over": round(over / total, 6),
            "p50": percentile(0.5), "p90": percentile(0.9), "max": ordered[-1][0]}


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
