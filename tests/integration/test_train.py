"""`fcdist train` end to end on the tiny model, through the entry points users run, with numbers asserted.

In-process (one process): the manifest guard, packed == unpacked, interrupt + resume == uninterrupted, the
run folder, QLoRA and full fine-tuning on CPU. Marked slow (two processes, started with
`accelerate launch --config_file configs/accelerate/<X>.yaml launch/train.py` exactly as users do): DDP (gloo),
ZeRO-2 and ZeRO-3 each stopped by a STOP file and resumed reproduce the one-process loss curve, and a
signal to one worker stops every rank at the same step, saved and resumable.

Losses are compared in fp32 within LOSS_TOLERANCE (absolute, on losses near 7): one process and two sum the
same per-token losses in a different order, which moves the result by about 1e-6.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from transformers import AutoModelForCausalLM, TrainerCallback

from fcdist.config import load_config, save_resolved
from fcdist.errors import SetupError
from fcdist.preprocess import shards
from fcdist.preprocess.fingerprint import fingerprint_components, fingerprint_hash
from fcdist.runtime import load_tokenizer
from fcdist.train.lock import acquire
from fcdist.train.metrics import read_metrics
from fcdist.train.trainer import CHECKPOINT_INFO, RunFolder, main, train

ROOT = Path(__file__).resolve().parents[2]
LOSS_TOLERANCE = 1e-5
# Short rows, 4 per step, every step logged. Documents over 256 tokens are dropped rather than truncated:
# a truncated document loses its completion and would leave steps with no trained token.
FAST = ["data.max_length=256", "data.overlong=drop", "data.num_shards=1", "train.global_batch_size=4",
        "train.logging_steps=1", "train.save_steps=4", "train.warmup_ratio=0.1"]
LAUNCH_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def job(tiny_model_dir, synth_data_file, tmp_path_factory):
    """``job(name, *overrides, data=None)`` -> a JobConfig of configs/jobs/tiny-cpu.yaml whose packed shards
    exist; shards are built once per data setting and shared."""
    packed_root, runs = tmp_path_factory.mktemp("packed"), tmp_path_factory.mktemp("runs")

    def make(name: str, *overrides: str, data: Path | None = None):
        config = load_config(ROOT / "configs/jobs/tiny-cpu.yaml", [
            f"model.name_or_path={tiny_model_dir}", f"data.source={data or synth_data_file}",
            f"output.root={runs}", f"output.name={name}", *FAST, *overrides])
        tokenizer = load_tokenizer(config)
        config.data.packed_dir = str(packed_root / fingerprint_hash(fingerprint_components(config, tokenizer)))
        if not (config.packed_dir / shards.MANIFEST).is_file():
            shards.preprocess_shard(config, 0, 1, tokenizer)
            shards.write_manifest(config, 1, tokenizer)
        return config

    return make


def losses(config) -> list[float]:
    return [line["loss"] for line in read_metrics(config.run_dir / "metrics.jsonl")]


def assert_same_curve(got: list[float], expected: list[float]) -> None:
    assert len(got) == len(expected)
    worst = max(abs(a - b) for a, b in zip(got, expected))
    assert worst < LOSS_TOLERANCE, f"loss curves differ by {worst:.3g}:\n{got}\n{expected}"


def falls(curve: list[float]) -> bool:
    return sum(curve[-3:]) / 3 < sum(curve[:3]) / 3 - 0.2


class CreateStopFileAt(TrainerCallback):
    """What a user (or the SLURM template on preemption) does: create runs/<name>/STOP mid-run."""

    def __init__(self, step: int, stop_file: Path):
        self.step, self.stop_file = step, stop_file

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            self.stop_file.touch()


def adapter_logits(tiny_model_dir, checkpoint: Path | None) -> torch.Tensor:
    from peft import PeftModel

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    if checkpoint is not None:
        model = PeftModel.from_pretrained(model, str(checkpoint))
    with torch.no_grad():
        return model(input_ids=torch.arange(5, 69).unsqueeze(0), use_cache=False).logits


# ---------------------------------------------------------------- one process, in-process


def test_a_manifest_made_with_other_settings_is_refused_naming_the_setting(job, tmp_path, capsys):
    config = job("mismatch")
    config.data.max_length = 320  # the shards were packed at 256
    with pytest.raises(SetupError, match=r"data\.max_length \(config: 320, manifest: 256\)"):
        train(config)
    assert main(["--config", str(save_resolved(config, tmp_path / "config.yaml"))]) == 1
    assert "data.max_length" in capsys.readouterr().err
    assert not (config.run_dir / "checkpoints").exists()


def test_running_out_of_memory_names_the_settings_that_decide_it(job, monkeypatch, capsys):
    """A GPU's out-of-memory error (raised here in the first training step, as CUDA would) becomes one line."""
    from fcdist.train.trainer import PackedTrainer

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(PackedTrainer, "training_step", out_of_memory)
    config = job("oom", "train.micro_batch_size=2")
    assert main(["--config", str(save_resolved(config, config.run_dir.parent / "oom.yaml"))]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fcdist train: error: out of memory on cpu in step 1: train.micro_batch_size=2 rows of "
                              "data.max_length=256 tokens"), err[-3:]
    assert "Traceback" not in "\n".join(err)


def test_packed_and_unpacked_rows_train_the_same_losses(job, synth_data_file, tmp_path):
    """Full-batch steps (every training document in every step), so both layouts see the same documents."""
    small = tmp_path / "small.jsonl"
    small.write_text("".join(synth_data_file.read_text().splitlines(keepends=True)[:24]))
    curves, rows = {}, {}
    for packing in ("true", "false"):
        config = job(f"packing-{packing}", f"data.packing={packing}", "data.max_length=512", "train.max_steps=3",
                     "train.save_steps=100", data=small)
        rows[packing] = json.loads((config.packed_dir / shards.MANIFEST).read_text())["totals"]["packed_rows"]
        config.train.global_batch_size = rows[packing]
        train(config)
        curves[packing] = losses(config)
    assert rows["true"] < 0.75 * rows["false"]  # documents were really packed together
    assert_same_curve(curves["true"], curves["false"])


def test_an_interrupted_run_resumes_onto_the_uninterrupted_curve(job, tiny_model_dir, capsys):
    steps = ["train.max_steps=10"]
    whole = job("whole", *steps)
    train(whole)

    cut = job("cut", *steps)
    run = RunFolder(cut.run_dir)
    stopped_at = train(cut, callbacks=[CreateStopFileAt(3, run.stop_file)])
    assert stopped_at == run.checkpoints / "step-4"  # the file is seen at the next step boundary
    assert not run.stop_file.exists() and not run.done_file.exists()
    assert [line["step"] for line in read_metrics(run.metrics)] == [1, 2, 3, 4]

    final = train(cut)
    assert_same_curve(losses(cut), losses(whole))
    grad_norms = [[line["grad_norm"] for line in read_metrics(c.run_dir / "metrics.jsonl")] for c in (cut, whole)]
    assert_same_curve(*grad_norms)
    assert falls(losses(cut))

    # The run folder explains the job.
    assert final == run.checkpoints / "step-10" and run.latest_pointer.read_text() == "step-10\n"
    assert sorted(p.name for p in run.checkpoints.glob("step-*")) == ["step-10", "step-8"]  # save_total_limit 2
    assert {"adapter_model.safetensors", "adapter_config.json", "optimizer.pt", "scheduler.pt", "rng_state.pth",
            "trainer_state.json", "tokenizer.json", CHECKPOINT_INFO} <= {p.name for p in final.iterdir()}
    manifest = json.loads(run.manifest.read_text())
    assert (manifest["final_checkpoint"], manifest["step"], manifest["world_size"]) == ("checkpoints/step-10", 10, 1)
    assert manifest["final_loss"] == losses(cut)[-1]
    assert run.done_file.read_text() == "checkpoints/step-10\n"
    assert load_config(cut.run_dir / "config.yaml").train.max_steps == 10
    assert run.loss_plot.stat().st_size > 0 and any(run.tensorboard.iterdir())
    line = read_metrics(run.metrics)[-1]
    assert line["tokens_per_s"] > 0 and 0 < line["packing_efficiency"] <= 1 and line["learning_rate"] > 0

    capsys.readouterr()
    assert main(["--config", str(cut.run_dir / "config.yaml")]) == 0  # a DONE run says so and exits 0
    assert "is DONE" in capsys.readouterr().out
    assert (adapter_logits(tiny_model_dir, final) - adapter_logits(tiny_model_dir, None)).abs().max() > 1e-3


def test_qlora_trains_on_cpu(job, cpu_4bit):
    config = job("qlora", "quant.load_in_4bit=true", "train.max_steps=4")
    final = train(config)
    assert json.loads((final / CHECKPOINT_INFO).read_text())["load_in_4bit"] is True
    assert (final / "adapter_model.safetensors").is_file() and len(losses(config)) == 4


def test_a_dequantized_copy_trains_the_qlora_curve_on_plain_layers(job, cpu_4bit):
    """quant.dequantized_copy: same NF4-rounded weights, plain linear layers, the adapter a QLoRA run saves."""
    from safetensors import safe_open

    from fcdist.model.quant import DequantizedLinear
    from fcdist.train.model import detect_runtime, load_model, resolve_choices

    qlora = job("qlora-ref", "quant.load_in_4bit=true", "train.max_steps=3")
    copy = job("qlora-copy", "quant.load_in_4bit=true", "quant.dequantized_copy=true", "train.max_steps=3")
    model = load_model(copy, resolve_choices(copy, detect_runtime()), detect_runtime())
    base = model.get_base_model().model.layers[0].self_attn.qkv_proj.base_layer
    assert type(base) is DequantizedLinear and not base.weight.requires_grad
    saved = [train(config) / "adapter_model.safetensors" for config in (qlora, copy)]
    # On CPU bitsandbytes' 4-bit matmul rounds differently from a plain one (about 1e-3 on these losses near 7).
    assert losses(copy) == pytest.approx(losses(qlora), abs=2e-2)
    keys = [sorted(safe_open(str(path), framework="pt").keys()) for path in saved]
    assert keys[0] == keys[1]


def test_full_finetuning_saves_the_whole_model(job, tiny_model_dir):
    config = job("full", "lora.enabled=false", "train.max_steps=3", "train.learning_rate=1.0e-3")
    final = train(config)
    trained = AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    changed = [name for name, p in trained.named_parameters() if not torch.equal(p, base.get_parameter(name))]
    assert "model.layers.0.self_attn.qkv_proj.weight" in changed and not (final / "adapter_config.json").exists()


def test_a_resume_with_a_changed_learning_rate_is_refused_and_config_yaml_keeps_what_ran(job, tmp_path, capsys):
    config = job("relearn", "train.max_steps=4", "train.save_steps=2")
    run = RunFolder(config.run_dir)
    assert train(config, callbacks=[CreateStopFileAt(1, run.stop_file)]) == run.checkpoints / "step-2"
    job_file = str(save_resolved(config, tmp_path / "job.yaml"))
    capsys.readouterr()

    assert main(["--config", job_file, "train.learning_rate=0.05", "lora.alpha=8"]) == 1
    error = capsys.readouterr().err
    assert "train.learning_rate (checkpoint: 0.005, now: 0.05)" in error and "lora.alpha (checkpoint: 32, now: 8)" in error
    assert len(error.strip().splitlines()) == 1
    assert load_config(config.run_dir / "config.yaml").train.learning_rate == 0.005  # still what ran

    # train.max_steps may change: the first resumed step runs at the rate the checkpoint set for it (the
    # 4-step schedule's), the later ones on the schedule recomputed for the new end (linear decay to 0 at step 6).
    assert main(["--config", job_file, "train.max_steps=6"]) == 0
    lines = read_metrics(run.metrics)
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5, 6] and run.done_file.is_file()
    assert [line["learning_rate"] for line in lines[2:]] == pytest.approx([0.005 * 2 / 3] + [0.005 * (6 - s) / 5 for s in (3, 4, 5)])
    assert load_config(config.run_dir / "config.yaml").train.max_steps == 6


def test_a_second_train_on_a_held_run_folder_is_refused_naming_the_holder(job, tmp_path, capsys):
    config = job("held")
    job_file = str(save_resolved(config, tmp_path / "job.yaml"))
    with acquire(config.run_dir):  # the first job, alive on this host
        assert main(["--config", job_file]) == 1
    error = capsys.readouterr().err
    assert f"host {socket.gethostname()}, pid {os.getpid()}" in error and str(config.run_dir / "LOCK") in error
    assert not (config.run_dir / "config.yaml").exists() and not (config.run_dir / "LOCK").exists()


# ---------------------------------------------------------------- two processes, as users launch them


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(accelerate_config: str, config, log: Path) -> list[str]:
    config_file = save_resolved(config, log.with_suffix(".yaml"))
    return [str(Path(sys.executable).parent / "accelerate"), "launch",
            "--config_file", f"configs/accelerate/{accelerate_config}.yaml", "--num_processes", "2",
            "--main_process_port", str(free_port()), "launch/train.py", "--config", str(config_file)]


def launch(accelerate_config: str, config, log: Path, on_progress=None) -> int:
    """``accelerate launch`` 2 processes; ``on_progress(proc, logged_steps)`` is called while it runs."""
    command = launch_command(accelerate_config, config, log)
    metrics = config.run_dir / "metrics.jsonl"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + LAUNCH_TIMEOUT_S
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"{accelerate_config} run timed out; log: {log}")
            if on_progress is not None:
                on_progress(proc, len(read_metrics(metrics)))
            time.sleep(0.1)
    if proc.returncode != 0:
        pytest.fail(f"{accelerate_config} run failed ({proc.returncode}):\n{log.read_text()[-4000:]}")
    return proc.returncode


@pytest.fixture(scope="module")
def one_process_curve(job):
    config = job("reference", "train.max_steps=24", "train.save_steps=10")
    final = train(config)
    return losses(config), final


@pytest.mark.slow
@pytest.mark.parametrize("accelerate_config", ["cpu_multiprocess", "zero2", "zero3"])
def test_two_processes_stopped_and_resumed_match_one_process(job, one_process_curve, accelerate_config, tmp_path,
                                                             tiny_model_dir):
    config = job(f"two-{accelerate_config}", "train.max_steps=24", "train.save_steps=10")
    run = RunFolder(config.run_dir)

    def stop_after_three_steps(proc, logged_steps):
        if logged_steps >= 3 and not run.latest_pointer.exists():
            run.stop_file.touch()

    launch(accelerate_config, config, tmp_path / "first.log", stop_after_three_steps)
    stopped_at = run.latest_checkpoint()
    assert stopped_at is not None and not run.done_file.exists() and not run.stop_file.exists()
    launch(accelerate_config, config, tmp_path / "resumed.log")

    reference, reference_final = one_process_curve
    assert_same_curve(losses(config), reference)
    assert falls(losses(config)) and run.done_file.is_file()
    final = run.latest_checkpoint()
    info = json.loads((final / CHECKPOINT_INFO).read_text())
    assert (info["world_size"], info["micro_batch_size"], info["gradient_accumulation_steps"]) == (2, 2, 1)
    # The adapter saved by rank 0 (gathered from the shards under ZeRO-3) is the trained one: it reloads
    # into the logits of the adapter trained by one process.
    logits = adapter_logits(tiny_model_dir, final)
    assert (logits - adapter_logits(tiny_model_dir, reference_final)).abs().max() < 1e-4
    assert (logits - adapter_logits(tiny_model_dir, None)).abs().max() > 1e-3  # and it is not the untrained base


@pytest.mark.slow
def test_a_signal_to_one_worker_stops_all_ranks_at_one_step(job, tmp_path):
    config = job("signalled", "train.max_steps=300", "train.save_steps=100")
    run = RunFolder(config.run_dir)
    signalled = []

    def signal_rank_one(proc, logged_steps):
        if logged_steps >= 3 and not signalled:
            workers = [c for c in psutil.Process(proc.pid).children(recursive=True) if "launch/train.py" in c.cmdline()]
            rank_one = [w for w in workers if w.environ().get("RANK") == "1"]
            rank_one[0].send_signal(signal.SIGUSR1)
            signalled.append(rank_one[0].pid)

    launch("cpu_multiprocess", config, tmp_path / "signalled.log", signal_rank_one)
    stopped_at = run.latest_checkpoint()
    step = int(stopped_at.name.removeprefix("step-"))
    assert signalled and 3 <= step < 300 and not run.done_file.exists()
    assert {"rng_state_0.pth", "rng_state_1.pth", "optimizer.pt"} <= {p.name for p in stopped_at.iterdir()}

    config.train.max_steps = step + 2  # resumable: finish two more steps
    launch("cpu_multiprocess", config, tmp_path / "resumed.log")
    assert run.done_file.is_file() and [line["step"] for line in read_metrics(run.metrics)][-3:] == [step, step + 1, step + 2]
    assert os.path.exists(run.checkpoints / f"step-{step + 2}")


def still_running(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.slow
def test_killing_the_launcher_kills_its_workers(job, tmp_path):
    """`accelerate launch`'s process group killed (SIGKILL) mid-run: both workers die with it, within seconds."""
    config = job("orphans", "train.max_steps=300", "train.save_steps=100")
    log = tmp_path / "orphans.log"
    command = launch_command("cpu_multiprocess", config, log)
    workers = []
    with open(log, "w") as out:
        launcher = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + LAUNCH_TIMEOUT_S
        while len(read_metrics(config.run_dir / "metrics.jsonl")) < 2:  # both workers are training
            assert launcher.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        workers = [c for c in psutil.Process(launcher.pid).children(recursive=True) if "launch/train.py" in c.cmdline()]
        assert len(workers) == 2
        os.killpg(launcher.pid, signal.SIGKILL)  # the launcher's group; torchrun put each worker in its own session
        launcher.wait()
        deadline = time.monotonic() + 10
        while still_running(workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not still_running(workers), "workers outlived their launcher"
    finally:  # never leave orphans training on the test machine
        for worker in still_running(workers):
            worker.kill()
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    # Rank 0 died holding the run's lock; a restart on this host takes it over at once (its pid is gone).
    assert json.loads((config.run_dir / "LOCK").read_text())["pid"] in {w.pid for w in workers}
    acquire(config.run_dir).release()
