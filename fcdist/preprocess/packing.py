"""Pack tokenized documents into rows of ``max_length`` tokens: TRL's best-fit decreasing behind fcdist's own
overlong handling and counts.

fcdist decides what each document becomes first (fit_overlong: truncate or drop, drop what truncation leaves
without a loss token, count it all in PackStats); TRL's ``pack_dataset(..., "bfd")`` then packs the whole shard
in one batch (``batch_size=None``), and add_positions turns its ``seq_lengths`` into position ids restarting
at every document. Measured (bench/packing_vs_trl.py; 60,000 synthetic documents, max_length 512, 14,503 of
them longer): TRL alone packs the 10,354 truncated documents that keep no loss token (40,796 rows, 10,354 of
them training nothing, against fcdist's 30,442), datasets' default batches of 1000 pack looser still (40,956),
and ``bfd_split`` splits every overlong document across rows. Behind fit_overlong, TRL's bfd makes as many
rows as the hand-written packer this replaced (commit 989f5e4: 37,995 rows, efficiency 0.9632 on
tests/unit/test_packing.py's 60,000 documents; 13.7 s before, 10.1 s after, to the saved Arrow table, on a
loaded 2-core machine) but groups the documents into rows differently (the CPU demo: the same 1,898 documents
in 1,302 rows either way, the rows not the same), so the shards' format version went up. That alone once moved
the CPU demo's trained parse rate from 45% to 2%: the demo then took 300 steps of 8 rows, whose outcome hung
on the data order; at 600 steps of 4 it holds across packers and shuffle seeds (configs/jobs/demo-cpu.yaml).
The cost: importing TRL (and torch) adds about 4 s of CPU to each preprocess process.
tests/unit/test_packing.py holds the differences.
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


def in_memory_dataset(table):
    """A datasets.Dataset over an Arrow table, without hashing all of it for a fingerprint (a second per 20k rows)."""
    import datasets
    from datasets.fingerprint import generate_random_fingerprint

    return datasets.Dataset(datasets.table.InMemoryTable(table), fingerprint=generate_random_fingerprint())


def documents_table(docs: list[tuple[list[int], list[int]]], lengths: bool):
    """The documents as an Arrow dataset, one per row; with ``lengths`` also ``seq_lengths``, the row's one length."""
    import pyarrow as pa

    columns = {"input_ids": [ids for ids, _ in docs], "labels": [labels for _, labels in docs]}
    if lengths:
        columns["seq_lengths"] = [[len(ids)] for ids, _ in docs]
    table = pa.table({name: pa.array(values, pa.list_(pa.int64())) for name, values in columns.items()})
    return in_memory_dataset(table)


def add_positions(table):
    """Append ``position_ids`` restarting at 0 at every document of a row (from ``seq_lengths``, per row)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = pc.cast(table["seq_lengths"].combine_chunks(), pa.list_(pa.int64()))  # TRL's are int32
    flat = lengths.flatten().to_numpy().astype(np.int64)
    positions = np.arange(flat.sum(), dtype=np.int64) - np.repeat(np.cumsum(flat) - flat, flat)
    row_lengths = pc.list_value_length(table["input_ids"].combine_chunks()).to_numpy()
    offsets = np.concatenate(([0], np.cumsum(row_lengths))).astype(np.int32)
    return pa.table({"input_ids": table["input_ids"], "labels": table["labels"],
                     "position_ids": pa.ListArray.from_arrays(offsets, positions), "doc_lengths": lengths})


def pack_table(docs: list[tuple[list[int], list[int]]], max_length: int, packing: bool):
    """Training rows (input_ids, labels, position_ids, doc_lengths) of documents that all fit max_length.

    Packing is TRL's best-fit decreasing (``pack_dataset``, ``bfd``) over the whole shard in one batch:
    datasets' default batches of 1000 would pack each batch apart (more rows). Every document already fits,
    so bfd never truncates, and it never splits one (``bfd_split`` would).
    """
    from trl.data_utils import pack_dataset

    pack = packing and bool(docs)  # pack_dataset fails on an empty table
    table = documents_table(docs, lengths=not pack)
    if pack:
        table = pack_dataset(table, max_length, "bfd", map_kwargs={"batch_size": None})
    return in_memory_dataset(add_positions(table.with_format("arrow")[:]))


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


def pack_documents(docs, max_length: int, overlong: str, packing: bool):
    """Documents (input_ids, labels) -> training rows (a datasets.Dataset) and statistics; unpacked mode keeps
    one document per row."""
    stats = PackStats(documents=len(docs))
    docs = fit_overlong(docs, max_length, overlong, stats)
    rows = pack_table(docs, max_length, packing)
    stats.tokens = sum(len(ids) for ids, _ in docs)
    stats.rows = len(rows)
    stats.slots = stats.rows * max_length
    return rows, stats
