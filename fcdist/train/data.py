"""Training data: the packed shards read as they are (no tokenization here), in a fixed order, and batched.

The order of the whole run is decided up front: epoch ``e`` is a permutation of the packed rows seeded by
``(train.seed, e)``, the epochs are concatenated, and the stream is cut at ``max_steps x global_batch`` rows.
Step ``s`` therefore trains on rows ``[s*G, (s+1)*G)`` of the stream whatever the world size (the Trainer reads
it sequentially and Accelerate deals consecutive micro-batches to the ranks), and resuming at step ``s``
skips exactly ``s*G`` rows: none twice, none skipped.

The collator keeps documents apart without an attention mask: transformers builds the block-diagonal mask
from position ids that restart at 0 for each document, and only when no mask is passed. Padding is added
as one more "document" (positions restarting at 0, labels -100), and the first label of every document is
dropped, so no token is trained to predict the start of the next, unrelated document.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fcdist.config import JobConfig
from fcdist.preprocess.shards import shard_name
from fcdist.preprocess.tokenize import IGNORE_INDEX

COLUMNS = ["input_ids", "labels", "position_ids"]


def load_packed_rows(config: JobConfig, manifest: dict):
    """All shards named by the (already checked) manifest, in shard order, memory-mapped."""
    import datasets

    num_shards = manifest["num_shards"]
    parts = [datasets.load_from_disk(str(Path(config.packed_dir) / shard_name(i, num_shards) / "data"))
             for i in range(num_shards)]
    rows = datasets.concatenate_datasets(parts).select_columns(COLUMNS)
    if len(rows) == 0:
        raise ValueError(f"{config.packed_dir}: the packed shards hold no training rows")
    return rows


class TrainingStream(torch.utils.data.Dataset):
    """The run's rows in training order: seeded per-epoch permutations of the packed rows, concatenated."""

    def __init__(self, rows, length: int, seed: int, shuffle: bool):
        self.rows, self.length, self.seed, self.shuffle = rows, length, seed, shuffle

    def __len__(self) -> int:
        return self.length

    @functools.lru_cache(maxsize=2)
    def epoch_order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.rows))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))

    def row_index(self, index: int) -> int:
        epoch, offset = divmod(index, len(self.rows))
        return int(self.epoch_order(epoch)[offset])

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return self.rows[self.row_index(index)]


@dataclass
class BatchStats:
    """What a micro-batch holds, for throughput metrics: real (non-pad) tokens, token slots computed, and
    attended (query, key) pairs, the sum over real tokens of position + 1 (causal, within the document)."""

    real_tokens: int
    slots: int
    attention_pairs: int


@dataclass
class PackedCollator:
    """Rows -> ``input_ids``, ``labels``, ``position_ids`` (no ``attention_mask``) + ``stats`` (a BatchStats,
    which the trainer takes out before the forward pass).

    ``flatten``: all rows become one row of shape [1, total], the only packed layout flash-attention's
    variable-length path recognises. Otherwise rows are padded to the longest (rounded up to
    ``pad_to_multiple_of``) for sdpa, eager and flex attention.
    """

    pad_token_id: int
    flatten: bool = False
    pad_to_multiple_of: int = 8

    def __call__(self, rows: list[dict]) -> dict:
        ids, labels, positions = [], [], []
        for row in rows:
            ids.append(list(row["input_ids"]))
            positions.append(list(row["position_ids"]))
            labels.append([IGNORE_INDEX if pos == 0 else label for label, pos in zip(row["labels"], row["position_ids"])])
        real = sum(len(row) for row in ids)
        pairs = sum(pos + 1 for row in positions for pos in row)
        if self.flatten:
            ids, labels, positions = [sum(ids, [])], [sum(labels, [])], [sum(positions, [])]
        else:
            width = -(-max(len(row) for row in ids) // self.pad_to_multiple_of) * self.pad_to_multiple_of
            for row_ids, row_labels, row_positions in zip(ids, labels, positions):
                pad = width - len(row_ids)
                row_ids += [self.pad_token_id] * pad
                row_labels += [IGNORE_INDEX] * pad
                row_positions += range(pad)  # the padding is a document of its own
        batch = {key: torch.tensor(value) for key, value in
                 (("input_ids", ids), ("labels", labels), ("position_ids", positions))}
        batch["stats"] = BatchStats(real_tokens=real, slots=batch["input_ids"].numel(), attention_pairs=pairs)
        return batch
