"""The model side of training: what runs where, the refusals, and the model training starts from.

Choices are made once, before anything heavy loads, from the job config and the runtime (GPU or not,
world size, DeepSpeed stage and offload, optional packages). A combination that cannot work stops the job
here with a message that names the setting to change, instead of failing an hour later on a cluster.

Rules (the seed's, extended):
- compute dtype and attention: fcdist.runtime's rules, the ones gather and inference use too;
- QLoRA: NF4 (or FP4) 4-bit base, double quantization, LoRA adapters trained in fp32 under autocast;
  under ZeRO-3 the 4-bit weights are stored in the compute dtype so DeepSpeed can shard them;
- LoRA targets ``all-linear`` resolve to the model's own linear layer names, never the output head.

Loading, quantization and LoRA themselves are fcdist/model/ (load.py, quant.py, lora.py), on plain arguments;
here are training's decisions for them (dtype of a trained or frozen base, ZeRO stage, device).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fcdist.config import JobConfig
from fcdist.errors import SetupError
from fcdist.model.load import load_base
from fcdist.model.lora import apply_lora
from fcdist.model.quant import prepare_quantized_base
from fcdist.runtime import flash_attn_installed, local_rank, process_device, resolve_attention, resolve_dtype, torch_dtype

# Backends whose document isolation transformers derives from position_ids (block-diagonal mask, or
# flash-attention's variable-length path for one flattened row). Anything else is refused.
PACKING_BACKENDS = ("flash_attention_2", "sdpa", "flex_attention", "eager")


@dataclass(frozen=True)
class Runtime:
    """Facts about where this process runs that decide what can work; read once at start."""

    gpu: bool
    world_size: int
    local_rank: int
    zero_stage: int  # 0 = no DeepSpeed
    offload_params: bool
    offload_optimizer: bool
    flash_attn: bool
    liger: bool
    mixed_precision_env: str  # what `accelerate launch` asked for; fcdist takes precision from the job config

    @property
    def device(self) -> torch.device:
        return process_device(self.gpu, self.local_rank)


@dataclass(frozen=True)
class Choices:
    """The resolved model-side settings of a run."""

    dtype: str  # bf16 | fp16 | fp32: compute dtype (autocast) and the frozen base's storage dtype
    attn_implementation: str
    flatten_rows: bool  # flash-attention isolates documents only inside one flattened row

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch_dtype(self.dtype)


def deepspeed_settings() -> tuple[int, bool, bool]:
    """(ZeRO stage, params offloaded, optimizer offloaded) as `accelerate launch` passed them to this process."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() != "true":
        return 0, False, False
    config_file = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    if config_file:
        zero = json.loads(Path(config_file).read_text()).get("zero_optimization", {})
        stage = int(zero.get("stage", 0))
        param_device = zero.get("offload_param", {}).get("device", "none")
        optimizer_device = zero.get("offload_optimizer", {}).get("device", "none")
    else:
        stage = int(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2"))
        param_device = os.environ.get("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "none")
        optimizer_device = os.environ.get("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "none")
    return stage, param_device not in ("none", None), optimizer_device not in ("none", None)


def detect_runtime() -> Runtime:
    stage, offload_params, offload_optimizer = deepspeed_settings()
    return Runtime(
        gpu=torch.cuda.is_available(),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=local_rank(),
        zero_stage=stage,
        offload_params=offload_params,
        offload_optimizer=offload_optimizer,
        flash_attn=flash_attn_installed(),
        liger=importlib.util.find_spec("liger_kernel") is not None,
        mixed_precision_env=os.environ.get("ACCELERATE_MIXED_PRECISION", "no"),
    )


def resolve_choices(config: JobConfig, runtime: Runtime) -> Choices:
    """Resolve dtype and attention, then refuse any combination that cannot train."""
    dtype = resolve_dtype(config.model.dtype, runtime.gpu)
    attention = resolve_attention(config.model.attn_implementation, runtime.gpu, runtime.flash_attn)
    for problem in setup_problems(config, runtime, dtype, attention):
        raise SetupError(problem)
    return Choices(dtype=dtype, attn_implementation=attention, flatten_rows=attention == "flash_attention_2")


def setup_problems(config: JobConfig, runtime: Runtime, dtype: str, attention: str) -> list[str]:
    """Every reason this setup cannot train, each naming the setting to change (empty: it can)."""
    t, q = config.train, config.quant
    problems = []
    if q.load_in_4bit and not config.lora.enabled:
        problems.append("quant.load_in_4bit=true with lora.enabled=false: 4-bit weights cannot be trained; "
                        "set quant.load_in_4bit=false for full fine-tuning")
    if dtype == "fp16" and not runtime.gpu:
        problems.append("model.dtype=fp16 on CPU: PyTorch has no fp16 mixed-precision training on CPU; use fp32 or bf16")
    if attention not in PACKING_BACKENDS:
        problems.append(f"model.attn_implementation={attention} cannot keep packed documents apart; "
                        f"use one of {', '.join(PACKING_BACKENDS)}")
    if attention == "flash_attention_2":
        if not runtime.flash_attn:
            problems.append("model.attn_implementation=flash_attention_2 but flash_attn is not installed "
                            "(fcdist never installs it at run time); install flash-attn or use sdpa")
        elif not runtime.gpu:
            problems.append("model.attn_implementation=flash_attention_2 needs a GPU; use sdpa on CPU")
        if dtype == "fp32":
            problems.append("model.attn_implementation=flash_attention_2 runs in fp16/bf16 only; set model.dtype=bf16 or use sdpa")
    if t.liger_kernel and not runtime.liger:
        problems.append("train.liger_kernel=true but liger_kernel is not installed; pip install -e '.[gpu]' or set train.liger_kernel=false")
    elif t.liger_kernel and not runtime.gpu:
        problems.append("train.liger_kernel=true needs a GPU (its kernels are Triton); set train.liger_kernel=false on CPU")
    if runtime.zero_stage == 3 and runtime.offload_params and q.load_in_4bit:
        problems.append("ZeRO-3 parameter offload cannot move bitsandbytes 4-bit weights; "
                        "use configs/accelerate/zero3.yaml or quant.load_in_4bit=false")
    if q.load_in_4bit and q.dequantized_copy and runtime.zero_stage == 3:
        problems.append("quant.dequantized_copy=true under ZeRO-3: the 4-bit weights are sharded and cannot be "
                        "dequantized in place; set quant.dequantized_copy=false")
    if (runtime.offload_optimizer or runtime.offload_params) and t.optimizer not in ("adamw_torch", "adamw_torch_fused"):
        problems.append(f"train.optimizer={t.optimizer} cannot run under ZeRO offload (DeepSpeed's CPU Adam from "
                        "configs/deepspeed/zero3_offload.json replaces it); set train.optimizer=adamw_torch")
    if runtime.mixed_precision_env not in ("no", dtype):
        problems.append(f"the accelerate config asks for mixed_precision={runtime.mixed_precision_env} but model.dtype "
                        f"resolves to {dtype}; precision comes from the job config: set mixed_precision: 'no' "
                        "in the accelerate config (the shipped ones do)")
    return problems


# ---------------------------------------------------------------- document isolation


def probe_config(model_config, attn_implementation: str):
    """A one-layer, narrow copy of the architecture (same head size, so rope scaling stays valid)."""
    probe = copy.deepcopy(model_config)
    heads = model_config.num_attention_heads
    head_dim = getattr(model_config, "head_dim", None) or model_config.hidden_size // heads
    probe.num_hidden_layers = 1
    probe.num_attention_heads = probe.num_key_value_heads = 2
    probe.hidden_size = 2 * head_dim
    probe.intermediate_size = 64
    probe.vocab_size = 128
    probe.pad_token_id = None  # the real pad id may not fit the probe's small vocabulary
    probe._attn_implementation = attn_implementation
    return probe


def check_document_isolation(model_config, choices: Choices, device: torch.device) -> None:
    """Refuse to train if this attention backend lets the documents of a packed row see each other.

    A random one-layer copy of the model runs a collated packed row of two documents and each document
    alone; their logits must agree. This exercises the real collator, transformers version and backend,
    so a library change that drops the block-diagonal mask stops the job instead of silently leaking.
    Costs well under a second.
    """
    from transformers import AutoModelForCausalLM

    from fcdist.train.data import PackedCollator

    probe = AutoModelForCausalLM.from_config(probe_config(model_config, choices.attn_implementation),
                                             dtype=choices.torch_dtype).to(device).eval()
    generator = torch.Generator().manual_seed(0)
    first, second = (torch.randint(1, 128, (n,), generator=generator).tolist() for n in (13, 11))
    row = {"input_ids": first + second, "labels": first + second, "position_ids": list(range(13)) + list(range(11))}
    short = {"input_ids": first, "labels": first, "position_ids": list(range(13))}  # forces a padded tail
    batch = PackedCollator(pad_token_id=0, flatten=choices.flatten_rows)([row, short])
    batch.pop("stats")
    with torch.no_grad():
        packed = probe(**{k: v.to(device) for k, v in batch.items() if k != "labels"}, use_cache=False).logits[0]
        alone = [probe(input_ids=torch.tensor([doc], device=device), use_cache=False).logits[0] for doc in (first, second)]
    tolerance = 1e-4 if choices.dtype == "fp32" else 5e-2
    gap = max((packed[:13] - alone[0]).abs().max().item(), (packed[13:24] - alone[1]).abs().max().item())
    if not gap <= tolerance:
        raise SetupError(
            f"model.attn_implementation={choices.attn_implementation}: documents packed in one row attend to each other "
            f"with this transformers version (logits differ by {gap:.3g} from separate documents); "
            "use sdpa, or data.packing=false")


# ---------------------------------------------------------------- loading


def load_base_model(config: JobConfig, choices: Choices, runtime: Runtime) -> nn.Module:
    """The pretrained base, quantized if asked. Full fine-tuning loads fp32 master weights (autocast computes
    in the compute dtype); a frozen base is stored in the compute dtype to halve its memory."""
    dtype = torch.float32 if not config.lora.enabled else choices.torch_dtype
    model = load_base(config, dtype, choices.attn_implementation, choices.dtype, runtime.device, runtime.zero_stage)
    # A KV cache makes transformers build a plain causal mask, letting packed documents see each other.
    model.config.use_cache = False
    return model


def load_model(config: JobConfig, choices: Choices, runtime: Runtime) -> nn.Module:
    """Base (+ 4-bit quantization) + LoRA adapters, or the whole model for full fine-tuning."""
    model = load_base_model(config, choices, runtime)
    if not config.lora.enabled:
        return model
    if config.quant.load_in_4bit:
        model = prepare_quantized_base(model, config.quant, choices.dtype, runtime.zero_stage)
    return apply_lora(model, config.lora)


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, frozen) parameter counts as the math sees them, excluding the input embedding (a lookup,
    no FLOPs). Counts the real sizes of 4-bit weights (packed two per byte) and ZeRO-3 partitioned ones."""
    embedding = model.get_input_embeddings()
    skip = {id(p) for p in embedding.parameters()} if embedding is not None else set()
    trainable = frozen = 0
    for param in model.parameters():
        if id(param) in skip:
            continue
        quant_state = getattr(param, "quant_state", None)
        if quant_state is not None:
            count = math.prod(quant_state.shape)
        else:
            count = getattr(param, "ds_numel", param.numel())
        if param.requires_grad:
            trainable += count
        else:
            frozen += count
    return trainable, frozen
