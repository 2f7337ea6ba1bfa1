"""`fcdist gather` on real checkpoints: ZeRO-3 shards consolidated by DeepSpeed, PEFT's merge, refusals."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from fcdist import gather
from fcdist.checkpoints import CheckpointError, EmptyAdapterError, write_file_manifest
from fcdist.config import save_resolved
from fcdist.layout import RunLayout
from fcdist.preprocess import shards
from fcdist.train.trainer import train

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["data.max_length=256", "data.overlong=drop", "train.global_batch_size=4", "train.max_steps=6",
         "train.save_steps=3", "train.logging_steps=1"]
PROBE = torch.arange(5, 69).unsqueeze(0)
LOGIT_TOLERANCE = 1e-4  # fp32 on CPU; ZeRO reduces gradients in another order than one process


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=PROBE, use_cache=False).logits


def base(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)


def preprocessed(config):
    shards.preprocess_shard(config, 0, 1)
    shards.write_manifest(config, 1)
    return config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def zero3_run(tmp_path_factory, tiny_model_dir, synth_data_file):
    """A run trained by two processes under DeepSpeed ZeRO-3, started as users start it."""
    from fcdist.config import load_config

    root = tmp_path_factory.mktemp("runs")
    config = preprocessed(load_config(ROOT / "configs/jobs/tiny-cpu.yaml", [
        f"model.name_or_path={tiny_model_dir}", f"data.source={synth_data_file}", f"output.root={root}",
        "output.name=zero3", *SMALL]))
    config_file = save_resolved(config, root / "zero3.yaml")
    log = root / "zero3.log"
    with open(log, "w") as out:
        result = subprocess.run([str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file",
                                 "configs/accelerate/zero3.yaml", "--num_processes", "2", "--main_process_port",
                                 str(free_port()), "launch/train.py", "--config", str(config_file)],
                                cwd=ROOT, timeout=400, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        pytest.fail(f"ZeRO-3 training failed ({result.returncode}):\n{log.read_text()[-4000:]}")
    return config


@pytest.mark.slow
def test_zero3_checkpoint_gathers_into_the_trained_adapter(zero3_run, tiny_model_dir):
    checkpoint = zero3_run.run_dir / "checkpoints" / "step-6"
    assert any(checkpoint.glob("global_step*")), "a real ZeRO checkpoint (per-rank shards)"
    out = gather.gather(zero3_run.run_dir)
    manifest = (out / "manifest.json").read_text()
    assert '"step": 6' in manifest and str(checkpoint) in manifest
    gathered = logits(PeftModel.from_pretrained(base(tiny_model_dir), str(out / "adapter")))
    # the adapter the trainer saved at the end, gathered from the shards by DeepSpeed at save time
    trained = logits(PeftModel.from_pretrained(base(tiny_model_dir), str(checkpoint)))
    assert (gathered - trained).abs().max() < LOGIT_TOLERANCE
    assert (gathered - logits(base(tiny_model_dir))).abs().max() > 1e-3, "the adapter changes the model"


@pytest.mark.slow
def test_zero3_shards_are_unpickled_only_when_the_user_trusts_the_run(zero3_run, tiny_model_dir, tmp_path, capsys):
    """A ZeRO checkpoint without its safetensors adapter (as an older trainer left it): only --trust-pickles
    consolidates DeepSpeed's shards, and they give the adapter the trainer saved."""
    import shutil

    run_dir = shutil.copytree(zero3_run.run_dir, tmp_path / "zero3")
    saved = zero3_run.run_dir / "checkpoints" / "step-6"
    checkpoint = run_dir / "checkpoints" / "step-6"
    (checkpoint / "adapter_model.safetensors").unlink()
    write_file_manifest(checkpoint)
    assert gather.main(["--run", str(run_dir)]) == 1
    assert "pass --trust-pickles if this run folder is your own" in capsys.readouterr().err
    out = gather.gather(run_dir, trust_pickles=True)
    gathered = logits(PeftModel.from_pretrained(base(tiny_model_dir), str(out / "adapter")))
    trained = logits(PeftModel.from_pretrained(base(tiny_model_dir), str(saved)))
    assert (gathered - trained).abs().max() < LOGIT_TOLERANCE


@pytest.mark.slow
def test_merge_gives_the_logits_of_base_plus_adapter(zero3_run, tiny_model_dir):
    out = gather.gather(zero3_run.run_dir, checkpoint="step-3", merge=True)
    merged = AutoModelForCausalLM.from_pretrained(out / "merged", dtype=torch.float32)
    with_adapter = PeftModel.from_pretrained(base(tiny_model_dir), str(out / "adapter"))
    assert (logits(merged) - logits(with_adapter)).abs().max() < 1e-5
    assert (out / "merged" / "model.safetensors").is_file() and (out / "merged" / "tokenizer.json").is_file()
    assert not list((out / "merged").glob("*.bin")), "weights only as safetensors"


def one_process_run(tiny_config_factory):
    config = preprocessed(tiny_config_factory(*SMALL, "train.max_steps=3"))
    train(config)
    return config


def test_empty_adapter_is_refused_naming_the_checkpoint(tiny_config_factory):
    config = one_process_run(tiny_config_factory)
    checkpoint = config.run_dir / "checkpoints" / "step-3"
    weights = load_file(str(checkpoint / "adapter_model.safetensors"))
    save_file({k: torch.zeros_like(v) if "lora_B" in k else v for k, v in weights.items()}, str(checkpoint / "adapter_model.safetensors"))
    write_file_manifest(checkpoint)  # as a run whose trainer saved it so: what gather checks is the adapter itself
    with pytest.raises(EmptyAdapterError, match=r"step-3: every lora_B weight of the adapter is zero"):
        gather.gather(config.run_dir)
    assert not (config.run_dir / "gathered").exists()
    assert not list(config.run_dir.glob(".gathered*")), "nothing half-written is left"


def test_interrupted_gather_leaves_no_complete_looking_folder(tiny_config_factory, monkeypatch):
    config = one_process_run(tiny_config_factory)
    first = gather.gather(config.run_dir)
    before = (first / "manifest.json").read_text()

    def die(*args, **kwargs):
        raise KeyboardInterrupt("killed while merging")

    monkeypatch.setattr(gather, "write_merged", die)
    with pytest.raises(KeyboardInterrupt):
        gather.gather(config.run_dir, merge=True)
    assert (first / "manifest.json").read_text() == before, "the previous complete gather is untouched"
    assert not (first / "merged").exists() and not list(config.run_dir.glob(".gathered*"))
    assert gather.main(["--run", str(config.run_dir), "--checkpoint", "step-3"]) == 0


def test_missing_checkpoint_is_named(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(FileNotFoundError, match="no complete checkpoint yet"):
        RunLayout.at(tmp_path).checkpoint("latest")
    with pytest.raises(CheckpointError, match="--checkpoint names step-7, which does not exist"):
        RunLayout.at(tmp_path).checkpoint("step-7")


def test_gather_takes_overrides_of_the_run_config(tiny_config_factory, tiny_model_dir, tmp_path, capsys):
    import json
    import shutil

    config = one_process_run(tiny_config_factory)
    moved_base = shutil.copytree(tiny_model_dir, tmp_path / "base-moved-here")
    assert gather.main(["--run", str(config.run_dir), f"model.name_or_path={moved_base}"]) == 0
    assert json.loads((config.run_dir / "gathered" / "manifest.json").read_text())["base_model"] == str(moved_base)
    assert gather.main(["--run", str(config.run_dir), "model.trust_remote_code=true"]) == 1
    assert "'model.trust_remote_code' cannot be turned on for a run folder" in capsys.readouterr().err


def test_full_finetuning_run_gathers_the_whole_model_as_safetensors(tiny_config_factory):
    from safetensors.torch import load_file as read_weights

    config = preprocessed(tiny_config_factory(*SMALL, "train.max_steps=3", "lora.enabled=false"))
    train(config)
    out = gather.gather(config.run_dir)
    merged = out / "merged"
    assert RunLayout.at(config.run_dir).gathered_model() == merged, "infer --run takes the full model"
    assert sorted(p.suffix for p in merged.iterdir() if p.suffix in (".safetensors", ".pt", ".bin", ".pth")) == [".safetensors"]
    assert (merged / "tokenizer.json").is_file() and not (out / "adapter").exists()
    saved = read_weights(str(config.run_dir / "checkpoints" / "step-3" / "model.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    assert all(torch.equal(model.state_dict()[name], tensor) for name, tensor in saved.items()), "the trained weights"
    assert '"merged": true' in (out / "manifest.json").read_text()
