"""Pretrained models and adapters from disk, for every stage: the one call that loads a model as the job config
pins it (revision, remote code, safetensors only), the base training starts from (4-bit when asked:
fcdist/model/quant.py), and for the stages after training which base a PEFT adapter folder needs, which
tokenizer goes with it, and the model inference runs (a full model folder, or an adapter merged into its
unquantized base). Training's choices of dtype, attention and device are fcdist/train/model.py's.

torch, transformers and peft load only inside the functions, so importing this costs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from fcdist.config import JobConfig
from fcdist.runtime import inference_attention, load_tokenizer_from, pick_device, resolve_dtype, torch_dtype

if TYPE_CHECKING:
    import torch
    from transformers import BitsAndBytesConfig, PreTrainedModel, PreTrainedTokenizerBase

ADAPTER_CONFIG = "adapter_config.json"

ADAPTER_WEIGHTS = "adapter_model.safetensors"

TOKENIZER_CONFIG = "tokenizer_config.json"


def adapter_base(model_dir: Path, base_model: str | None = None) -> str | None:
    """The base model of a PEFT adapter folder (``base_model`` when given, else the one its config names);
    None for a full model folder."""
    path = Path(model_dir) / ADAPTER_CONFIG
    if not path.is_file():
        return None
    return base_model or json.loads(path.read_text())["base_model_name_or_path"]


def revision_for(source: str | Path, config: JobConfig) -> str | None:
    """The config pins the revision of its own base model only; other folders are taken as they are."""
    return config.model.revision if str(source) == config.model.name_or_path else None


def load_inference_tokenizer(source: str | Path, config: JobConfig) -> PreTrainedTokenizerBase:
    tokenizer = load_tokenizer_from(source, revision_for(source, config), config.model.trust_remote_code)
    tokenizer.padding_side = "left"  # generation continues from the last column, so padding goes before the prompt
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tokenizer_source(model_dir: Path, base: str | None) -> str | Path:
    """The folder's own tokenizer when it saved one, else its base model's."""
    return model_dir if base is None or (model_dir / TOKENIZER_CONFIG).is_file() else base


def apply_adapter(model: PreTrainedModel, adapter_dir: Path) -> PreTrainedModel:
    """Merge the LoRA weights into the (unquantized) base: one pass over the weights, after which no
    generated token pays for the adapter's extra matmuls."""
    from peft import PeftModel

    if not (adapter_dir / ADAPTER_WEIGHTS).is_file():
        raise FileNotFoundError(f"{adapter_dir}: no {ADAPTER_WEIGHTS} (adapters are loaded from safetensors only)")
    return PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()


def load_model_for_inference(
    model_dir: str | Path, config: JobConfig, base_model: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A full model folder, or a PEFT adapter folder applied to its base, in eval mode on this process's device.

    ``base_model`` replaces the base an adapter records (``--run`` uses the config's ``model.name_or_path``).
    The base is loaded unquantized: inference has no optimizer state to make room for.
    """
    model_dir = Path(model_dir)
    base = adapter_base(model_dir, base_model)
    source = base or model_dir
    device = pick_device()
    gpu = device.type == "cuda"
    tokenizer = load_inference_tokenizer(tokenizer_source(model_dir, base), config)  # first: it fails fast
    model = load_pretrained(source, config, torch_dtype(resolve_dtype(config.model.dtype, gpu)),
                            inference_attention(config.model.attn_implementation, config.infer.cache, device),
                            device_map={"": device})
    if base is not None:
        model = apply_adapter(model, model_dir)
    return model.eval(), tokenizer


def load_pretrained(source: str | Path, config: JobConfig, dtype: torch.dtype, attention: str | None = None,
                    quantization: BitsAndBytesConfig | None = None, device_map: dict | None = None) -> PreTrainedModel:
    """``AutoModelForCausalLM.from_pretrained(source)`` as the job config pins it: its revision for the config's
    own base (``revision_for``), remote code only where ``model.trust_remote_code`` allows, and safetensors only,
    never a pickled ``.bin``. None keeps transformers' default (attention, no quantization, no device map)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        source, revision=revision_for(source, config), dtype=dtype, attn_implementation=attention,
        quantization_config=quantization, device_map=device_map,
        trust_remote_code=config.model.trust_remote_code, use_safetensors=True,
    )


def load_base(config: JobConfig, dtype: torch.dtype, attention: str, compute_dtype: str, device: torch.device,
              zero_stage: int = 0) -> PreTrainedModel:
    """The config's base model stored in ``dtype``, in 4 bits computing in ``compute_dtype`` when
    ``quant.load_in_4bit`` (fcdist/model/quant.py)."""
    from fcdist.model.quant import quantization_config

    quantization = quantization_config(config.quant, compute_dtype, zero_stage)
    # bitsandbytes quantizes while placing weights, so a 4-bit base goes straight to this rank's device
    # (ZeRO-3 refuses a device_map and places the weights itself)
    device_map = {"": device} if quantization is not None and zero_stage != 3 else None
    return load_pretrained(config.model.name_or_path, config, dtype, attention, quantization, device_map)
