"""fcdist.runtime: the one rule each stage follows for its shard, device, dtype and attention."""

from __future__ import annotations

import argparse

import pytest
import torch

from fcdist import infer
from fcdist.config import load_config
from fcdist.errors import InputError
from fcdist.preprocess import shards
from fcdist.runtime import array_shard, resolve_attention, resolve_dtype, shard_from_environment, torch_dtype

ARRAY_KEYS = ("ID", "MIN", "MAX", "COUNT")


@pytest.fixture
def env(monkeypatch):
    """``env(ID=.., MIN=.., ...)``: this process as that SLURM array task (no array, no ranks by default)."""
    for name in [f"SLURM_ARRAY_TASK_{key}" for key in ARRAY_KEYS] + ["RANK", "WORLD_SIZE"]:
        monkeypatch.delenv(name, raising=False)

    def set_array(**task):
        for key, value in task.items():
            monkeypatch.setenv(f"SLURM_ARRAY_TASK_{key}" if key in ARRAY_KEYS else key, str(value))

    return set_array


def preprocess_shard() -> tuple[int | None, int]:
    return shards.shard_args(argparse.Namespace(shard=None, num_shards=None), load_config(None, []))


def infer_shard() -> tuple[int, int]:
    parser = infer.build_parser()
    return infer.shard_args(parser.parse_args(["--model", "m", "--out", "p.jsonl"]), parser)


@pytest.mark.parametrize("first", [0, 1])  # --array=0-3 and --array=1-4
@pytest.mark.parametrize("index", range(4))
def test_array_task_is_the_same_shard_for_preprocess_and_infer(env, first, index):
    env(ID=first + index, MIN=first, MAX=first + 3, COUNT=4)
    assert array_shard() == shard_from_environment() == preprocess_shard() == infer_shard() == (index, 4)


@pytest.mark.parametrize("array, num_shards, expected", [
    ((3, 3, 3, 1), 8, (3, 8)),  # a rerun: --array=3 --num-shards 8: task ids are shard numbers
    ((2, 0, 7, 4), 8, (2, 8)),  # --array=0-7:2
])
def test_array_task_ids_are_shard_numbers_when_the_count_is_given(env, array, num_shards, expected):
    env(**dict(zip(ARRAY_KEYS, array)))
    assert array_shard(num_shards) == expected


@pytest.mark.parametrize("array, num_shards, message", [
    ((3, 3, 3, 1), None, "give --num-shards N"),  # a rerun without the set's size would make shard 0 of 1
    ((2, 0, 7, 4), None, "give --num-shards N"),  # a stepped array is not a whole set
    ((2, 2, 2, 1), 2, "outside the 2 shard"),
])
def test_array_task_refuses_a_shard_that_does_not_fit(env, array, num_shards, message):
    env(**dict(zip(ARRAY_KEYS, array)))
    with pytest.raises(InputError, match=message):
        array_shard(num_shards)
    if num_shards is None:
        with pytest.raises(InputError, match=message):
            infer_shard()


def test_outside_an_array_infer_takes_its_rank_and_preprocess_every_shard(env):
    assert array_shard() is None
    assert shard_from_environment() == (0, 1)
    assert preprocess_shard() == (None, load_config(None, []).data.num_shards)
    env(RANK=1, WORLD_SIZE=4)
    assert shard_from_environment() == (1, 4)


def test_dtype_and_attention_rules():
    assert [resolve_dtype(setting, gpu=False) for setting in ("auto", "bf16", "fp16")] == ["fp32", "bf16", "fp16"]
    assert torch_dtype("bf16") is torch.bfloat16 and torch_dtype("fp32") is torch.float32
    assert resolve_attention("auto", gpu=True, flash_attn=True) == "flash_attention_2"
    assert resolve_attention("auto", gpu=False, flash_attn=True) == resolve_attention("auto", gpu=True, flash_attn=False) == "sdpa"
    assert resolve_attention("eager", gpu=True, flash_attn=True) == "eager"
