"""The run folder (atomic publication, pointer, rotation), checkpoint checks, stop requests, metrics, shipped configs."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from fcdist.checkpoints import CheckpointError
from fcdist.errors import SetupError
from fcdist.train.data import BatchStats
from fcdist.train.metrics import FlopModel, WindowMeter, metrics_line, plot_loss, read_metrics, truncate_metrics
from fcdist.train.trainer import CHECKPOINT_INFO, RunFolder, StopRequest, build_parser, check_checkpoint, check_resumable

ROOT = Path(__file__).resolve().parents[2]


def fake_trainer_save(run: RunFolder, step: int) -> Path:
    folder = run.incomplete / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text("{}")
    return folder


def test_publish_renames_points_latest_and_keeps_the_newest(tmp_path):
    run = RunFolder(tmp_path / "run")
    for step in (5, 10, 15):
        fake_trainer_save(run, step)
        final = run.publish(step, {"step": step}, keep=2)
        assert final == run.checkpoints / f"step-{step}" and run.latest_checkpoint() == final
    assert sorted(p.name for p in run.checkpoints.glob("step-*")) == ["step-10", "step-15"]
    assert run.latest_pointer.read_text() == "step-15\n"
    assert json.loads((final / CHECKPOINT_INFO).read_text()) == {"step": 15}
    assert not any(run.incomplete.iterdir())


def test_a_pointer_to_a_missing_checkpoint_is_refused(tmp_path):
    run = RunFolder(tmp_path)
    assert run.latest_checkpoint() is None
    run.checkpoints.mkdir()
    run.latest_pointer.write_text("step-7\n")
    with pytest.raises(CheckpointError, match="step-7, which does not exist"):
        run.latest_checkpoint()


def write_adapter(folder: Path, lora_b: torch.Tensor) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"base_model.model.layers.0.qkv_proj.lora_A.weight": torch.ones(4, 8),
               "base_model.model.layers.0.qkv_proj.lora_B.weight": lora_b}, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text("{}")
    return folder


def test_checkpoint_check_accepts_a_trained_adapter(tmp_path):
    check_checkpoint(write_adapter(tmp_path / "ok", torch.full((8, 4), 0.01)), lora=True, expect_trained=True)


def test_checkpoint_check_fails_on_zero_or_empty_or_missing_adapters(tmp_path):
    zero = write_adapter(tmp_path / "zero", torch.zeros(8, 4))
    check_checkpoint(zero, lora=True, expect_trained=False)  # update 1 may run at learning rate 0
    with pytest.raises(RuntimeError, match="untrained"):
        check_checkpoint(zero, lora=True, expect_trained=True)
    with pytest.raises(RuntimeError, match="stage3_gather_16bit_weights_on_model_save"):
        check_checkpoint(write_adapter(tmp_path / "empty", torch.zeros(0)), lora=True, expect_trained=False)
    with pytest.raises(RuntimeError, match="was not saved"):
        check_checkpoint(tmp_path, lora=True, expect_trained=False)
    with pytest.raises(RuntimeError, match="no model.safetensors"):
        check_checkpoint(tmp_path, lora=False, expect_trained=False)


def test_resume_refuses_a_different_global_batch(tmp_path):
    info = {"global_batch_size": 8, "seed": 1, "shuffle": True, "packed_fingerprint": "f", "lora": True,
            "world_size": 2, "deepspeed_zero_stage": 0, "settings": {"train.learning_rate": 0.001}}
    (tmp_path / CHECKPOINT_INFO).write_text(json.dumps(info))
    check_resumable(tmp_path, {**info, "world_size": 4})  # DDP checkpoints do not depend on the world size
    with pytest.raises(SetupError, match=r"global_batch_size \(checkpoint: 8, now: 16\)"):
        check_resumable(tmp_path, {**info, "global_batch_size": 16})
    with pytest.raises(SetupError, match="world_size"):
        check_resumable(tmp_path, {**info, "world_size": 4, "deepspeed_zero_stage": 3})


def test_resume_names_every_changed_setting_and_accepts_a_new_max_steps(tmp_path):
    settings = {"train.learning_rate": 0.001, "lora.alpha": 32, "model.dtype": "fp32"}
    info = {"global_batch_size": 8, "seed": 1, "shuffle": True, "packed_fingerprint": "f", "lora": True,
            "deepspeed_zero_stage": 0, "max_steps": 10, "settings": settings}
    (tmp_path / CHECKPOINT_INFO).write_text(json.dumps(info))
    check_resumable(tmp_path, {**info, "max_steps": 20})
    changed = {**settings, "train.learning_rate": 0.05, "lora.alpha": 16}
    with pytest.raises(SetupError, match=r"train\.learning_rate \(checkpoint: 0\.001, now: 0\.05\), "
                                         r"lora\.alpha \(checkpoint: 32, now: 16\)"):
        check_resumable(tmp_path, {**info, "settings": changed})
    with pytest.raises(SetupError, match=r"quant\.quant_type \(checkpoint: None, now: 'nf4'\)"):
        check_resumable(tmp_path, {**info, "settings": {**settings, "quant.quant_type": "nf4"}})
    # A checkpoint that records no settings differs in every one (its file check would refuse it first).
    (tmp_path / CHECKPOINT_INFO).write_text(json.dumps({k: v for k, v in info.items() if k != "settings"}))
    with pytest.raises(SetupError, match=r"train\.learning_rate \(checkpoint: None, now: 0\.001\)"):
        check_resumable(tmp_path, info)


def test_stop_is_requested_by_file_or_signal(tmp_path):
    stop = StopRequest(tmp_path / "STOP")
    assert not stop.agreed(torch.device("cpu"))
    (tmp_path / "STOP").touch()
    assert stop.agreed(torch.device("cpu"))
    (tmp_path / "STOP").unlink()
    before = signal.getsignal(signal.SIGUSR1)
    with stop.signals_caught():
        os.kill(os.getpid(), signal.SIGUSR1)
    assert stop.agreed(torch.device("cpu"))
    assert signal.getsignal(signal.SIGUSR1) is before


def test_window_summary_reports_tokens_packing_and_mfu_only_with_a_known_peak():
    meter = WindowMeter(FlopModel(1, 1, 1, 1), peak_flops=None, world_size=1)  # CPU: device_peak_flops() is None
    meter.add(BatchStats(real_tokens=300, slots=400, attention_pairs=900))
    meter.data_wait = 0.25
    summary = meter.summary(torch.device("cpu"))
    assert summary["packing_efficiency"] == 0.75 and summary["data_wait_s"] == 0.25
    assert summary["tokens_per_s"] > 0 and summary["mfu"] is None and summary["peak_memory_gib"] is None
    assert meter.real_tokens == 0  # a new window starts
    flops = FlopModel(1, 1, 1, 1)
    meter = WindowMeter(flops, peak_flops=1e6, world_size=2)
    meter.add(BatchStats(real_tokens=300, slots=400, attention_pairs=900))
    summary = meter.summary(torch.device("cpu"))
    assert summary["mfu"] == pytest.approx(flops.step_flops(300, 900) / summary["window_s"] / 2e6)


def test_metrics_file_truncates_to_the_resume_point_and_plots(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(metrics_line(step, {"loss": 1.0 / step, "learning_rate": 1e-3})) + "\n"
                            for step in range(1, 6)))
    truncate_metrics(path, 3)
    assert [line["step"] for line in read_metrics(path)] == [1, 2, 3]
    assert plot_loss(path, tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_help_has_a_usage_line(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert capsys.readouterr().out.startswith("usage: accelerate launch")


@pytest.mark.parametrize("path", sorted((ROOT / "configs/accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_accelerate_configs_fit_the_trainer(path):
    import yaml

    config = yaml.safe_load(path.read_text())
    assert path.read_text().startswith("#")  # each says what it is for and how to run it
    if config["distributed_type"] == "DEEPSPEED":
        deepspeed = config["deepspeed_config"]
        assert (ROOT / deepspeed["deepspeed_config_file"]).is_file()
        assert deepspeed["deepspeed_multinode_launcher"] == "standard"  # srun starts one launcher per node
        assert "mixed_precision" not in config  # Accelerate refuses it beside a DeepSpeed config file
    else:
        assert config["mixed_precision"] == "no"  # precision comes from the job config


def test_zero3_configs_gather_16bit_weights_when_saving():
    """Without it the LoRA adapter saved under ZeRO-3 is empty."""
    for name in ("zero3", "zero3_offload"):
        zero = json.loads((ROOT / f"configs/deepspeed/{name}.json").read_text())["zero_optimization"]
        assert zero["stage"] == 3 and zero["stage3_gather_16bit_weights_on_model_save"] is True
