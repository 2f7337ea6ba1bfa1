"""Where this process runs and what it runs with, decided by one rule for every stage: its device, the compute
dtype, the attention backend (and inference's KV cache, which decides it), the tokenizer, and which shard of the
work is its own.

Training, gather, inference and preprocessing all call these, so a model trained in bf16 with sdpa is gathered
and served the same way, and a SLURM job array gives the same shard to every stage. torch and transformers load
only inside the functions that need them, so a stage's ``--help`` stays fast.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

from fcdist.errors import InputError

if TYPE_CHECKING:
    import torch

    from fcdist.config import JobConfig

# config name -> torch's (and vLLM's) name of a compute dtype
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
# Any one of these lets AutoTokenizer load a folder (fast tokenizer, sentencepiece model, or its config)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


# ---------------------------------------------------------------- device, dtype, attention


def local_rank() -> int:
    """This process's index on its node (LOCAL_RANK under torchrun or accelerate; 0 alone)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def process_device(gpu: bool, rank: int) -> torch.device:
    """GPU ``rank`` of the node when there are GPUs, else the CPU."""
    import torch

    return torch.device("cuda", rank) if gpu else torch.device("cpu")


def pick_device() -> torch.device:
    import torch

    return process_device(torch.cuda.is_available(), local_rank())


def resolve_dtype(setting: str, gpu: bool) -> str:
    """``model.dtype`` when set, else bf16 where the GPU supports it, fp16 on older GPUs, fp32 on CPU."""
    if setting != "auto":
        return setting
    if not gpu:
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def torch_dtype(name: str) -> torch.dtype:
    import torch

    return getattr(torch, DTYPES[name])


def flash_attn_installed() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def resolve_attention(setting: str, gpu: bool, flash_attn: bool) -> str:
    """``model.attn_implementation`` when set, else flash_attention_2 on a GPU with ``flash_attn``, else sdpa."""
    if setting != "auto":
        return setting
    return "flash_attention_2" if flash_attn and gpu else "sdpa"


def inference_attention(setting: str, cache: str, device: torch.device) -> str:
    """The runtime's rule, except under a static cache: sdpa, what transformers compiles as one graph
    (flash-attention unpads the padded cache at every layer of every step)."""
    static = pick_cache(cache, device) == "static"
    return resolve_attention(setting, device.type == "cuda", flash_attn_installed() and not static)


def pick_cache(setting: str, device: torch.device) -> str:
    """auto: the static cache on a CUDA GPU, where it saves copying the whole cache at every step; the dynamic
    one elsewhere (on a CPU the static cache's attention over its empty tail costs more than it saves)."""
    if setting != "auto":
        return setting
    return "static" if device.type == "cuda" else "dynamic"


# ---------------------------------------------------------------- tokenizer


def load_tokenizer_from(source: str | Path, revision: str | None = None, trust_remote_code: bool = False):
    """``AutoTokenizer.from_pretrained(source)``; a local folder without a loadable tokenizer is an InputError.

    Checked here because transformers, given a model folder without tokenizer files, answers with a hint
    about sentencepiece that names neither the folder nor the cause.
    """
    from transformers import AutoTokenizer

    folder = Path(source)
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise InputError(f"{folder}: no tokenizer in this model folder (none of {', '.join(TOKENIZER_FILES)}); "
                         "copy the base model's tokenizer files there")
    try:
        return AutoTokenizer.from_pretrained(str(source), revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        if not folder.is_dir():
            raise  # a hub id: transformers' message names the repository
        raise InputError(f"{folder}: cannot load its tokenizer: {str(e).splitlines()[0]}") from None


def load_tokenizer(config: JobConfig):
    """The base model's tokenizer, as the job config names and pins it."""
    return load_tokenizer_from(config.model.name_or_path, config.model.revision, config.model.trust_remote_code)


# ---------------------------------------------------------------- which shard is mine


def array_shard(num_shards: int | None = None) -> tuple[int, int] | None:
    """(shard, count) of this SLURM array task; None outside a job array.

    With ``num_shards`` (the size of the whole set) the task ids are the shard numbers: ``--array=3`` reruns
    shard 3, ``--array=0-7:2`` the even ones. Without it the array must be the whole set, consecutive ids from
    0 or from 1 (``--array=0-3`` or ``1-4``: shards 0-3 of 4); anything else is refused, since a rerun of some
    tasks would otherwise take them for a smaller set and cut the rows into shards that do not fit the others.
    """
    env = os.environ
    if "SLURM_ARRAY_TASK_ID" not in env:
        return None
    task, first, last, count = (int(env[f"SLURM_ARRAY_TASK_{key}"]) for key in ("ID", "MIN", "MAX", "COUNT"))
    if num_shards is None:
        if first not in (0, 1) or last - first + 1 != count:
            raise InputError(f"SLURM array {first}-{last} of {count} task(s) is not a whole set numbered from 0 or 1 "
                             "(a rerun of some tasks?): give --num-shards N, the size of the whole set")
        return task - first, count
    if not 0 <= task < num_shards:
        raise InputError(f"SLURM array task {task} is outside the {num_shards} shard(s) 0-{num_shards - 1}")
    return task, num_shards


def shard_from_environment() -> tuple[int, int]:
    """A SLURM array task's shard (``array_shard``), else torchrun's or accelerate's RANK of WORLD_SIZE, else
    the one whole shard."""
    from_array = array_shard()
    if from_array is not None:
        return from_array
    env = os.environ
    if int(env.get("WORLD_SIZE", 1)) > 1:
        return int(env["RANK"]), int(env["WORLD_SIZE"])
    return 0, 1
