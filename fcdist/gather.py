"""``fcdist gather``: a training checkpoint -> a LoRA adapter folder (and, with ``--merge``, a full model).

A full fine-tuning run (``lora.enabled: false``) has no adapter: its checkpoint already holds the whole model
as safetensors, which gather copies (safetensors, config and tokenizer only) to ``gathered/merged/``.

Every checkpoint holds the PEFT adapter as safetensors (under ZeRO-3 too: the trainer checks it at each save),
which gather copies; nothing here unpickles, since a run folder may come from someone else. Only a DeepSpeed
ZeRO checkpoint without that adapter needs its pickled shards, consolidated with DeepSpeed's own
``zero_to_fp32``, and only with ``--trust-pickles``. The step folder must match the file list it was
published with (fcdist/checkpoints.py), or it is refused naming the file. The result is
``runs/<name>/gathered/{adapter,merged}/`` plus ``manifest.json``, built in a temporary folder and renamed
when complete: an interrupted gather leaves nothing that looks complete.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from fcdist.atomic import replace_dir
from fcdist.checkpoints import LATEST, CheckpointError, check_adapter, step_number
from fcdist.config import JobConfig, add_config_arguments, load_run_config, to_dict
from fcdist.layout import RunLayout
from fcdist.model.load import ADAPTER_CONFIG, ADAPTER_WEIGHTS, apply_adapter, load_pretrained
from fcdist.preprocess.fingerprint import sha256_file
from fcdist.runtime import load_tokenizer_from, pick_device, resolve_dtype, torch_dtype

ADAPTER_FILES = (ADAPTER_WEIGHTS, ADAPTER_CONFIG)
# What a full model folder needs to load with from_pretrained; a checkpoint's pickles (optimizer.pt,
# training_args.bin, rng_state.pth) are never copied out of the run.
FULL_MODEL_PATTERNS = ("config.json", "generation_config.json", "model.safetensors", "model-*.safetensors",
                       "model.safetensors.index.json")


def is_deepspeed_checkpoint(path: Path) -> bool:
    return any(path.glob("global_step*"))


def adapter_from_zero_checkpoint(checkpoint: Path, config: JobConfig, out_dir: Path) -> None:
    """Consolidate ZeRO shards (DeepSpeed's utility) and save the LoRA weights as a PEFT adapter."""
    import torch
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from peft import LoraConfig, get_peft_model

    # DeepSpeed reads its shards with torch.load(weights_only=False): only reached with --trust-pickles.
    state = get_fp32_state_dict_from_zero_checkpoint(str(checkpoint), exclude_frozen_parameters=True)
    lora_config = LoraConfig.from_pretrained(str(checkpoint))
    model = get_peft_model(load_pretrained(config.model.name_or_path, config, torch.float32), lora_config)
    missing = [k for k in state if k not in dict(model.named_parameters())]
    if missing:
        raise RuntimeError(f"{checkpoint}: ZeRO state has parameters the PEFT model lacks, e.g. {missing[0]}")
    model.load_state_dict(state, strict=False)
    model.save_pretrained(str(out_dir))


def write_adapter(checkpoint: Path, config: JobConfig, out_dir: Path, trust_pickles: bool) -> None:
    """Copy the checkpoint's safetensors adapter; consolidate ZeRO shards only where it has none."""
    missing = [f for f in ADAPTER_FILES if not (checkpoint / f).is_file()]
    if not missing:
        out_dir.mkdir(parents=True)
        for name in ADAPTER_FILES:
            shutil.copy2(checkpoint / name, out_dir / name)
    elif not is_deepspeed_checkpoint(checkpoint):
        raise FileNotFoundError(f"{checkpoint}: no {', '.join(missing)} (is this a LoRA run's checkpoint?)")
    elif not trust_pickles:
        raise CheckpointError(f"{checkpoint}: no {', '.join(missing)}; only DeepSpeed's pickled shards are left, and "
                              "unpickling runs any code they hold: pass --trust-pickles if this run folder is your own")
    else:
        adapter_from_zero_checkpoint(checkpoint, config, out_dir)


def write_merged(adapter_dir: Path, config: JobConfig, out_dir: Path) -> None:
    """PEFT's merge into the 16-bit base (fp32 on CPU), unquantized for a QLoRA run's adapter too (what PEFT
    supports for merging), saved with safetensors and the tokenizer."""
    dtype = torch_dtype(resolve_dtype("auto", pick_device().type == "cuda"))  # bf16 where supported, else fp16; fp32 on CPU
    merged = apply_adapter(load_pretrained(config.model.name_or_path, config, dtype), adapter_dir)
    merged.save_pretrained(str(out_dir))
    save_base_tokenizer(config, out_dir)


def save_base_tokenizer(config: JobConfig, out_dir: Path) -> None:
    """The base model's tokenizer beside gathered weights, so the folder loads on its own."""
    load_tokenizer_from(config.model.name_or_path, config.model.revision).save_pretrained(str(out_dir))


def write_full_model(checkpoint: Path, config: JobConfig, out_dir: Path) -> int:
    """Copy a full fine-tuning checkpoint's weights (safetensors) and config, plus the base's tokenizer;
    returns the number of weight files."""
    files = sorted({path for pattern in FULL_MODEL_PATTERNS for path in checkpoint.glob(pattern)})
    weights = [path for path in files if path.suffix == ".safetensors"]
    if not weights or not (checkpoint / "config.json").is_file():
        raise FileNotFoundError(f"{checkpoint}: no model.safetensors and config.json (is this a full fine-tuning checkpoint?)")
    out_dir.mkdir(parents=True)
    for path in files:
        shutil.copy2(path, out_dir / path.name)
    save_base_tokenizer(config, out_dir)
    return len(weights)


def gather_into(tmp: Path, source: Path, config: JobConfig, merge: bool, trust_pickles: bool) -> dict:
    """Write the gathered folders into ``tmp``; returns what the manifest records about them."""
    if not config.lora.enabled:
        return {"full_model_files": write_full_model(source, config, tmp / "merged"), "merged": True}
    write_adapter(source, config, tmp / "adapter", trust_pickles)
    tensors = check_adapter(tmp / "adapter", where=source)
    if merge:
        write_merged(tmp / "adapter", config, tmp / "merged")
    return {"adapter_tensors": tensors, "merged": merge}


def file_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def gather(run_dir: Path, checkpoint: str = LATEST, merge: bool = False, overrides: list[str] | None = None,
           trust_remote_code: bool = False, trust_pickles: bool = False) -> Path:
    """Build ``<run>/gathered/`` from one checkpoint with the run's saved config (and overrides); returns its path."""
    config = load_run_config(run_dir, overrides, trust_remote_code)
    layout = RunLayout.at(run_dir)
    source = layout.checkpoint(checkpoint)
    final = layout.gathered
    tmp = run_dir / f".gathered.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        contents = gather_into(tmp, source, config, merge, trust_pickles)
        manifest = {
            "source_checkpoint": str(source), "step": step_number(source), "base_model": config.model.name_or_path,
            "base_revision": config.model.revision, **contents,
            "files": file_hashes(tmp), "config": to_dict(config), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    made = "full model" if not config.lora.enabled else "adapter" + (" + merged model" if merge else "")
    print(f"{final}: {made} from {source.name}")
    return final


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist gather",
        usage="fcdist gather --run runs/NAME [--checkpoint step-N|latest] [--merge] [--trust-remote-code] "
              "[--trust-pickles] [key=value ...]",
        description="Turn a training checkpoint (DDP or DeepSpeed ZeRO) into a PEFT adapter folder, optionally merged.",
    )
    parser.add_argument("--run", required=True, type=Path, help="run folder (runs/<name>)")
    parser.add_argument("--checkpoint", default=LATEST, help="step-N or latest (default)")
    parser.add_argument("--merge", action="store_true", help="also write the adapter merged into the base weights")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run model code shipped with the base model (a run's saved config never turns it on)")
    parser.add_argument("--trust-pickles", action="store_true",
                        help="this run folder is your own: consolidate a ZeRO checkpoint that lacks a safetensors "
                             "adapter from DeepSpeed's pickled shards (unpickling can run code)")
    add_config_arguments(parser, config_help=None)  # the run's config.yaml, e.g. model.name_or_path= where the base moved
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        gather(args.run, args.checkpoint, args.merge, args.overrides, args.trust_remote_code, args.trust_pickles)
    except (ValueError, OSError, RuntimeError) as e:  # config, checkpoint and file problems: one line each
        print(f"fcdist gather: error: {e}", file=sys.stderr)
        return 1
    return 0
