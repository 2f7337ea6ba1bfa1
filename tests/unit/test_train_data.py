"""Packed rows: collation, the seeded training order, and document isolation on the tiny Phi-3.

Isolation is the property packing depends on: the logits of a packed row must equal those of each of its
documents run alone (fp32, 1e-5). The model is loaded through fcdist's own loader and called the way the
Trainer calls it (no attention_mask, no use_cache argument), in eval mode, where a KV cache would be on by
default and would let the second document see the first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fcdist.config import load_config
from fcdist.errors import SetupError
from fcdist.train.data import PackedCollator, TrainingStream
from fcdist.train.model import Choices, check_document_isolation, detect_runtime, load_base_model

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5  # fp32; a leak between documents moves logits by ~1 on this model
DOC_LENGTHS = ((37, 50, 20), (30,))  # row 1: three documents; row 2: one, so it gets a padded tail


def packed_rows(vocab: int = 1000) -> tuple[list[dict], list[list[int]]]:
    generator = torch.Generator().manual_seed(0)
    rows, documents = [], []
    for lengths in DOC_LENGTHS:
        row = {"input_ids": [], "labels": [], "position_ids": []}
        for length in lengths:
            doc = torch.randint(5, vocab, (length,), generator=generator).tolist()
            documents.append(doc)
            row["input_ids"] += doc
            row["labels"] += doc
            row["position_ids"] += list(range(length))
        rows.append(row)
    return rows, documents


def test_collator_pads_with_a_document_of_its_own_and_masks_document_starts():
    rows, _ = packed_rows()
    batch = PackedCollator(pad_token_id=3)(rows)
    stats = batch.pop("stats")
    assert set(batch) == {"input_ids", "labels", "position_ids"}  # no attention_mask: see TRAINING-FACTS
    assert batch["input_ids"].shape == (2, 112)  # longest row (107) rounded up to a multiple of 8
    assert batch["position_ids"][1].tolist() == list(range(30)) + list(range(82))
    assert batch["input_ids"][1, 30:].eq(3).all() and batch["labels"][1, 30:].eq(-100).all()
    starts = [0, 37, 87]  # no token is trained to predict the first token of the next document
    assert batch["labels"][0, starts].eq(-100).all()
    assert batch["labels"][0, 1:37].tolist() == rows[0]["labels"][1:37]
    assert (stats.real_tokens, stats.slots) == (137, 224)
    assert stats.attention_pairs == sum(n * (n + 1) // 2 for lengths in DOC_LENGTHS for n in lengths)


def test_flattening_collator_makes_one_row_without_padding():
    rows, _ = packed_rows()
    batch = PackedCollator(pad_token_id=3, flatten=True)(rows)
    stats = batch.pop("stats")
    assert batch["input_ids"].shape == (1, 137) and stats.slots == stats.real_tokens == 137
    assert batch["position_ids"][0, 107:].tolist() == list(range(30))
    assert batch["labels"][0, 107] == -100


def test_training_stream_is_seeded_and_covers_every_row_once_per_epoch():
    rows = [{"input_ids": [i]} for i in range(10)]
    stream = TrainingStream(rows, length=25, seed=7, shuffle=True)
    order = [stream[i]["input_ids"][0] for i in range(len(stream))]
    assert sorted(order[:10]) == sorted(order[10:20]) == list(range(10))
    assert order[:10] != order[10:20]  # each epoch has its own permutation
    assert order == [TrainingStream(rows, 25, 7, True)[i]["input_ids"][0] for i in range(25)]
    assert order != [TrainingStream(rows, 25, 8, True)[i]["input_ids"][0] for i in range(25)]
    assert [TrainingStream(rows, 12, 7, False)[i]["input_ids"][0] for i in range(12)] == list(range(10)) + [0, 1]
    with pytest.raises(IndexError):
        stream[25]


@pytest.mark.parametrize("attention,flatten", [("sdpa", False), ("eager", False), ("flex_attention", False), ("sdpa", True)])
def test_packed_row_logits_equal_each_document_alone(tiny_model_dir, attention, flatten):
    config = load_config(ROOT / "configs/jobs/tiny-cpu.yaml", [f"model.name_or_path={tiny_model_dir}"])
    choices = Choices(dtype="fp32", attn_implementation=attention, flatten_rows=flatten)
    model = load_base_model(config, choices, detect_runtime()).eval()
    rows, documents = packed_rows(vocab=model.config.vocab_size)
    batch = PackedCollator(pad_token_id=3, flatten=flatten)(rows)
    batch.pop("stats")
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        alone = [model(input_ids=torch.tensor([doc])).logits[0] for doc in documents]
    flat = packed.reshape(-1, packed.shape[-1]) if flatten else None
    offsets = [(0, 0), (0, 37), (0, 87), (1, 0)] if not flatten else [(0, 0), (0, 37), (0, 87), (0, 107)]
    for (row, start), doc, expected in zip(offsets, documents, alone):
        got = flat[start:start + len(doc)] if flatten else packed[row, start:start + len(doc)]
        assert (got - expected).abs().max().item() < TOLERANCE


def test_isolation_check_passes_for_the_tiny_model(tiny_model_dir):
    from transformers import AutoConfig

    model_config = AutoConfig.from_pretrained(tiny_model_dir)
    check_document_isolation(model_config, Choices("fp32", "sdpa", False), torch.device("cpu"))


def test_isolation_check_refuses_a_backend_that_lets_documents_mix(tiny_model_dir, monkeypatch):
    """If transformers stopped building the block-diagonal mask, training must stop, not warn."""
    from transformers import AutoConfig, masking_utils

    monkeypatch.setattr(masking_utils, "find_packed_sequence_indices", lambda position_ids: None)
    model_config = AutoConfig.from_pretrained(tiny_model_dir)
    with pytest.raises(SetupError, match="attend to each other"):
        check_document_isolation(model_config, Choices("fp32", "sdpa", False), torch.device("cpu"))
