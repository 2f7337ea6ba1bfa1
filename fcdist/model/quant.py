"""4-bit bases (QLoRA): the bitsandbytes settings from the ``quant`` config section, QLoRA's preparation of a
loaded 4-bit base, and its optional dequantized copy (``quant.dequantized_copy``).

Plain arguments (the config section, the compute dtype's name, the DeepSpeed ZeRO stage), so that whatever
loads a 4-bit base builds it the same way; training decides those in fcdist/train/model.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from fcdist.runtime import torch_dtype

if TYPE_CHECKING:
    from transformers import BitsAndBytesConfig

    from fcdist.config import QuantConfig


def quantization_config(quant: QuantConfig, compute_dtype: str, zero_stage: int) -> BitsAndBytesConfig | None:
    """bitsandbytes' settings for ``quant`` computing in ``compute_dtype`` (bf16/fp16/fp32); None: no 4-bit base."""
    if not quant.load_in_4bit:
        return None
    from transformers import BitsAndBytesConfig

    storage = quant.quant_storage
    if storage == "auto":
        # ZeRO-3 flattens and shards parameters by dtype; uint8-packed 4-bit weights would not mix with the rest.
        storage = compute_dtype if zero_stage == 3 else "uint8"
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant.quant_type,
        bnb_4bit_use_double_quant=quant.double_quant,
        bnb_4bit_compute_dtype=torch_dtype(compute_dtype),
        bnb_4bit_quant_storage=torch.uint8 if storage == "uint8" else torch_dtype(storage),
    )


def prepare_quantized_base(model: nn.Module, quant: QuantConfig, compute_dtype: str, zero_stage: int) -> nn.Module:
    """QLoRA's preparation of a 4-bit base, and its optional dequantized copy (quant.dequantized_copy)."""
    from peft import prepare_model_for_kbit_training

    if zero_stage != 3:
        # Casts norms and embeddings to fp32 for stable training; skipped under ZeRO-3, which needs one
        # dtype to shard (as TRL does for sharded QLoRA). Gradient checkpointing is the Trainer's job.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if quant.dequantized_copy:
        # After the fp32 casts (which would double the copy's size) and before LoRA wraps the layers, so
        # PEFT adapts plain linear layers and skips the defensive copy it makes of every 4-bit layer's output.
        dequantize_4bit_layers(model, torch_dtype(compute_dtype))
    return model


class DequantizedLinear(nn.Linear):
    """A frozen linear layer that computes like bitsandbytes' ``Linear4bit``: inputs cast to the weight's
    dtype, output returned in the input's dtype. After ``prepare_model_for_kbit_training`` the residual stream
    is fp32, so the output stays fp32 and a small LoRA update added to it is not rounded away in bf16 (with a
    plain bf16 output, H200 runs lowered the loss by 0.125 in 5 steps where the 4-bit layers lowered it by 0.19)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x.to(self.weight.dtype), self.weight, self.bias).to(x.dtype)


def dequantize_4bit_layers(model: nn.Module, dtype: torch.dtype) -> None:
    """Replace every bitsandbytes 4-bit linear layer by a ``DequantizedLinear`` holding its dequantized weights.

    Written here because transformers' ``model.dequantize()`` gave weights up to 0.15 away from what the
    4-bit layer computes with (weights of magnitude 0.1, tiny Phi-3, double quantization, transformers
    5.23); bitsandbytes' own ``dequantize_4bit`` is what ``Linear4bit.forward`` dequantizes with on a GPU.
    """
    import bitsandbytes as bnb
    from bitsandbytes.functional import dequantize_4bit

    quantized = [(name, module) for name, module in model.named_modules() if isinstance(module, bnb.nn.Linear4bit)]
    for name, module in quantized:
        weight = dequantize_4bit(module.weight.data, module.weight.quant_state).to(dtype)
        plain = DequantizedLinear(module.in_features, module.out_features, bias=module.bias is not None, device="meta")
        plain.weight = nn.Parameter(weight, requires_grad=False)
        if module.bias is not None:
            plain.bias = nn.Parameter(module.bias.data.to(dtype), requires_grad=False)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, plain)
