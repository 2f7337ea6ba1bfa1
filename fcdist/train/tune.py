"""``train.tune: auto``: the speed settings chosen from the GPU's memory, so a shipped config is fast by default.

On a GPU, ``auto`` sets ``train.micro_batch_size``, ``train.gradient_checkpointing``, ``train.torch_compile``,
``train.liger_kernel`` and ``quant.dequantized_copy`` to the fastest plan whose estimated peak memory fits,
and says which and why. None of them changes the math a step computes (the benchmark checks each plan's
losses against the plain path's), so a resumed run may be tuned differently. Without a GPU, or with
``train.tune: manual``, the settings are used as configured.

The plans, fastest first, as measured on one H200 with Phi-3-mini, QLoRA, rows of 512
(bench/results/train-speed-h200-2026-12-01*.md, real tokens/s over the seed recipe's in the same run):

    copy + compile, no checkpointing     3.07x (micro-batch 20, 61 GiB)   3.20x (micro-batch 30, 88 GiB)
    copy + compile + checkpointing       2.36x (micro-batch 30, 19 GiB)
    4-bit + Liger, checkpointing         1.37x (micro-batch 60, 26 GiB)   the fallback without a compiler

("copy" is ``quant.dequantized_copy``: the 4-bit base dequantized once to bf16.) Liger Kernel is not combined
with torch.compile: together they hit an illegal memory access on the H200.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from fcdist.config import JobConfig

GIB = 2**30
# Activation bytes per token, per layer and per hidden unit (Phi-3's MLP is 2.67x the hidden size), fitted
# to the H200 peaks above: 5.34 MiB per token without checkpointing, 0.75 MiB with it (32 layers x 3072).
ACTIVATION_BYTES = {False: 57.0, True: 8.0}
FRACTION_USABLE = 0.85  # of the GPU's memory: the allocator's fragmentation and CUDA's own use
MAX_TOKENS_PER_MICRO_BATCH = 16_384  # beyond this the H200 ran no faster (micro-batch 30 x 512: +4%)
MIN_TOKENS_WITHOUT_CHECKPOINTING = 4_096  # below it, checkpointing with a larger micro-batch is faster


@dataclass(frozen=True)
class ModelShape:
    """What the memory estimate needs from a model config."""

    parameters: int
    layers: int
    hidden: int
    intermediate: int
    embedding_parameters: int  # input embedding + output head, kept in fp32 by QLoRA's preparation


def model_shape(model_config) -> ModelShape:
    hidden, layers = model_config.hidden_size, model_config.num_hidden_layers
    heads = model_config.num_attention_heads
    kv_heads = getattr(model_config, "num_key_value_heads", None) or heads
    head_dim = getattr(model_config, "head_dim", None) or hidden // heads
    attention = hidden * (heads + 2 * kv_heads) * head_dim + heads * head_dim * hidden
    mlp = 3 * hidden * model_config.intermediate_size
    embeddings = 2 * model_config.vocab_size * hidden
    return ModelShape(layers * (attention + mlp) + embeddings, layers, hidden, model_config.intermediate_size, embeddings)


@dataclass(frozen=True)
class Plan:
    """One way to run a step: the settings ``auto`` would set."""

    name: str
    dequantized_copy: bool
    compile: bool
    checkpointing: bool
    liger: bool


PLANS = (
    Plan("copy + compile, no checkpointing", dequantized_copy=True, compile=True, checkpointing=False, liger=False),
    Plan("copy + compile + checkpointing", dequantized_copy=True, compile=True, checkpointing=True, liger=False),
    Plan("4-bit + Liger + checkpointing", dequantized_copy=False, compile=False, checkpointing=True, liger=True),
)


def trainable_parameters(config: JobConfig, shape: ModelShape) -> int:
    """The parameters the optimizer updates: the whole model, or the LoRA adapters."""
    if not config.lora.enabled:
        return shape.parameters
    # r x (in + out) summed over attention and MLP projections (all-linear), ~7 hidden + 3 intermediate
    return shape.layers * config.lora.r * (7 * shape.hidden + 3 * shape.intermediate)


def frozen_bytes(config: JobConfig, shape: ModelShape, plan: Plan) -> float:
    """The frozen base LoRA trains on (none for full fine-tuning)."""
    if not config.lora.enabled:
        return 0.0
    body = shape.parameters - shape.embedding_parameters
    if config.quant.load_in_4bit:
        return body * (2.0 if plan.dequantized_copy else 0.56) + 4.0 * shape.embedding_parameters
    return 2.0 * shape.parameters


def weight_bytes(config: JobConfig, shape: ModelShape, plan: Plan) -> float:
    """The frozen base, the trainable parameters and their optimizer states."""
    # trainable: fp32 weights and gradients plus two Adam moments, 16 bytes each at most
    return frozen_bytes(config, shape, plan) + 16.0 * trainable_parameters(config, shape)


def activation_bytes(shape: ModelShape, plan: Plan, tokens: int) -> float:
    return ACTIVATION_BYTES[plan.checkpointing] * shape.layers * shape.hidden * tokens


def peak_bytes(config: JobConfig, shape: ModelShape, plan: Plan, tokens: int) -> float:
    """Estimated peak GPU memory of one rank for a micro-batch of ``tokens`` tokens."""
    return weight_bytes(config, shape, plan) + activation_bytes(shape, plan, tokens)


def gpu_memory(gpu: bool, device) -> int | None:
    import torch

    return torch.cuda.get_device_properties(device).total_memory if gpu else None


def compile_problem(capability: tuple[int, int], triton: bool) -> str | None:
    """Why torch.compile cannot run on a GPU of this compute capability, or None."""
    if not triton:
        return "triton is not installed"
    if capability < (7, 0):
        return "the GPU is older than compute capability 7.0"
    return None


def can_compile() -> str | None:
    """Why torch.compile cannot run here, or None."""
    import torch

    return compile_problem(torch.cuda.get_device_capability(), importlib.util.find_spec("triton") is not None)


def available_plans(config: JobConfig, zero_stage: int, liger: bool,
                    compile_problem: str | None) -> tuple[list[Plan], list[str]]:
    """The plans this setup can run, and why others were left out."""
    plans, notes = [], []
    for plan in PLANS:
        if plan.compile and compile_problem:
            notes.append(f"no torch.compile: {compile_problem}")
        elif plan.compile and zero_stage:
            notes.append("no torch.compile under DeepSpeed ZeRO")
        elif plan.liger and not liger:
            notes.append("no Liger Kernel: liger-kernel is not installed (pip install -e '.[gpu]')")
        else:
            plans.append(dataclasses.replace(
                plan, dequantized_copy=plan.dequantized_copy and config.quant.load_in_4bit and zero_stage != 3))
    return plans, sorted(set(notes))


def micro_batch_divisors(per_rank_rows: int) -> list[int]:
    return [d for d in range(per_rank_rows, 0, -1) if per_rank_rows % d == 0]


def choose(config: JobConfig, shape: ModelShape, plans: list[Plan], per_rank_rows: int,
           gpu_bytes: int) -> tuple[Plan, int, float] | None:
    """The first plan (fastest first) with a micro-batch that fits: (plan, micro-batch, estimated peak)."""
    budget = FRACTION_USABLE * gpu_bytes
    row_tokens = config.data.max_length
    for plan in plans:
        for micro in micro_batch_divisors(per_rank_rows):
            tokens = micro * row_tokens
            if tokens > MAX_TOKENS_PER_MICRO_BATCH and micro > 1:
                continue
            if not plan.checkpointing and tokens < MIN_TOKENS_WITHOUT_CHECKPOINTING:
                break
            peak = peak_bytes(config, shape, plan, tokens)
            if peak <= budget:
                return plan, micro, peak
    return None


def tune(config: JobConfig, model_config, per_rank_rows: int, zero_stage: int, liger: bool,
         gpu_bytes: int | None, compiler: Callable[[], str | None] = can_compile) -> tuple[JobConfig, str]:
    """The config with ``auto``'s settings applied, and the line that says what it chose and why.

    ``compiler`` says why torch.compile cannot run (None: it can); ``fcdist plan`` passes a GPU it has not got."""
    if config.train.tune != "auto":
        return config, ""
    if gpu_bytes is None:
        return config, "train.tune=auto: no GPU, settings as configured"
    shape = model_shape(model_config)
    plans, notes = available_plans(config, zero_stage, liger, compiler())
    chosen = choose(config, shape, plans, per_rank_rows, gpu_bytes)
    if chosen is None:
        why = f"no plan fits {gpu_bytes / GIB:.0f} GiB even at micro-batch 1" if plans else "no plan can run here"
        return config, f"train.tune=auto: {why}; settings as configured" + "".join(f"; {note}" for note in notes)
    plan, micro, peak = chosen
    tuned = dataclasses.replace(
        config,
        train=dataclasses.replace(config.train, micro_batch_size=micro, gradient_checkpointing=plan.checkpointing,
                                  torch_compile=plan.compile, liger_kernel=plan.liger),
        quant=dataclasses.replace(config.quant, dequantized_copy=plan.dequantized_copy),
    )
    why = (f"train.tune=auto: {plan.name}, micro-batch {micro} x {config.data.max_length} tokens, estimated peak "
           f"{peak / GIB:.1f} of {gpu_bytes / GIB:.0f} GiB (the fastest plan that fits; train.tune=manual to set them yourself)")
    return tuned, why + "".join(f"; {note}" for note in notes)
