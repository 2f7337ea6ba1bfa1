"""LoRA adapters on a base model, from the ``lora`` config section: which layers they adapt (``all-linear``
resolves to the model's own linear layer names, never the output head) and the PEFT model that trains them.

Training applies them (fcdist/train/model.py); ``fcdist plan`` resolves the same targets on an empty model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fcdist.errors import SetupError

if TYPE_CHECKING:
    from torch import nn

    from fcdist.config import LoraConfig


def resolve_target_modules(model: nn.Module, spec: str | list[str]) -> list[str]:
    """LoRA target names as they appear in this model; ``all-linear`` = every linear layer but the output head.

    Phi-3 resolves to ``down_proj, gate_up_proj, o_proj, qkv_proj``. A name that matches no linear layer is
    refused with the names that exist.
    """
    from torch import nn

    head = model.get_output_embeddings()
    linear = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                     if isinstance(module, nn.Linear) and module is not head})
    if spec == "all-linear":
        return linear
    wanted = [spec] if isinstance(spec, str) else list(spec)
    unknown = [name for name in wanted if name not in linear]
    if unknown:
        raise SetupError(f"lora.target_modules: {', '.join(unknown)} matches no linear layer of "
                         f"{type(model).__name__}; its linear layers are {', '.join(linear)}")
    return wanted


def apply_lora(model: nn.Module, lora: LoraConfig) -> nn.Module:
    """``model`` wrapped by PEFT with fresh, trainable LoRA adapters as ``lora`` sets them."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    settings = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=resolve_target_modules(model, lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, settings)
