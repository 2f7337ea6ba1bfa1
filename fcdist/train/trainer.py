"""``fcdist train``: train on the packed shards, from one CPU process to many nodes, resumably.

    accelerate launch --config_file configs/accelerate/<X>.yaml launch/train.py --config configs/jobs/<Y>.yaml [key=value ...]
    fcdist train --config configs/jobs/tiny-cpu.yaml            # one process

transformers' Trainer does the training (DeepSpeed, gradient checkpointing, 8-bit optimizers, saving,
resume with data skipping, loss per trained token across accumulation and ranks). This module adds what
it lacks: a fixed global batch whatever the world size, packed rows kept apart, atomic checkpoints with a
``latest`` pointer, a graceful stop all ranks agree on, and a run folder that explains the job:

    runs/<name>/config.yaml                the resolved config
    runs/<name>/metrics.jsonl              one line per logging step (metrics.py)
    runs/<name>/tensorboard/               the same, for TensorBoard
    runs/<name>/checkpoints/step-<N>/      complete checkpoints (the last train.save_total_limit)
    runs/<name>/checkpoints/latest         the name of the newest complete one, e.g. "step-40"
    runs/<name>/checkpoints/.incomplete/   where the Trainer writes a checkpoint before it is renamed
    runs/<name>/STOP                       create it to stop at the next step, saved and resumable
    runs/<name>/hang-<T>/rank-<r>.txt      every rank's stack when one stopped making progress (watchdog.py)
    runs/<name>/manifest.json, loss.png, DONE   written when training reaches train.max_steps

A step folder holds what the Trainer saves plus ``fcdist_checkpoint.json`` and ``fcdist_files.json``
(every file's size and sha256, checked before a resume: fcdist/checkpoints.py). With LoRA that is the PEFT
adapter (``adapter_model.safetensors`` + ``adapter_config.json``, checked to hold trained weights) under
DDP, ZeRO-2 and ZeRO-3 alike; full fine-tuning saves ``model.safetensors`` (or its shards + index).
Optimizer, scheduler and RNG states are ``optimizer.pt``, ``scheduler.pt``, ``rng_state*.pth`` under DDP, and
DeepSpeed's ``global_step<N>/`` shards under ZeRO. The tokenizer files and ``trainer_state.json`` are there too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.distributed as dist
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, reduce
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from fcdist.atomic import write_text_atomic
from fcdist.checkpoints import CheckpointError, check_adapter, read_latest_pointer, resumable_checkpoint, write_file_manifest
from fcdist.config import RUN_CONFIG, JobConfig, TrainConfig, add_config_arguments, load_config, save_resolved
from fcdist.errors import InputError, SetupError
from fcdist.layout import RunLayout
from fcdist.preprocess.shards import check_manifest
from fcdist.runtime import load_tokenizer
from fcdist.train.data import PackedCollator, TrainingStream, load_packed_rows
from fcdist.train.metrics import FlopModel, WindowMeter, device_peak_flops, metrics_line, plot_loss, read_metrics, truncate_metrics
from fcdist.train.lock import acquire, is_main_process
from fcdist.train.model import (Choices, Runtime, check_document_isolation, detect_runtime,
                                load_model, parameter_counts, resolve_choices)
from fcdist.train.tune import gpu_memory, tune
from fcdist.train.saving import disk_full_reported
from fcdist.train.watchdog import HangWatchdog

CHECKPOINT_INFO = "fcdist_checkpoint.json"
# Settings a resumed run must share with its checkpoint, or rows would be trained twice or skipped
RESUME_KEYS = ("global_batch_size", "seed", "shuffle", "packed_fingerprint", "lora")
# train.max_steps may change on resume (extend a run, or end it sooner): the scheduler's saved state keeps only
# the step and the base learning rate, so warmup and decay are recomputed for the new max_steps. The first resumed
# step still runs at the rate the checkpoint's schedule set for it; metrics.jsonl shows each step's rate.


# ---------------------------------------------------------------- batch plan


@dataclass(frozen=True)
class BatchPlan:
    """global = micro x accumulation x world: the global batch is the config's whatever the world size."""

    global_batch: int
    micro_batch: int
    accumulation: int
    world_size: int


def plan_batches(train: TrainConfig, world_size: int) -> BatchPlan:
    """Derive micro-batch and accumulation from the fixed global batch; refuse splits that do not divide."""
    if train.global_batch_size % world_size:
        raise SetupError(f"train.global_batch_size={train.global_batch_size} cannot be split evenly over "
                         f"{world_size} processes; make it a multiple of {world_size}")
    per_rank = train.global_batch_size // world_size
    micro = train.micro_batch_size or max(d for d in range(1, min(per_rank, train.max_micro_batch) + 1) if per_rank % d == 0)
    if per_rank % micro:
        raise SetupError(f"train.micro_batch_size={micro} does not divide the {per_rank} rows each of the "
                         f"{world_size} processes trains per step (train.global_batch_size={train.global_batch_size})")
    return BatchPlan(train.global_batch_size, micro, per_rank // micro, world_size)


# ---------------------------------------------------------------- the run folder


class RunFolder:
    """Paths of ``runs/<name>/`` and the file operations on it; the writing methods run on rank 0 only."""

    def __init__(self, root: Path):
        layout = RunLayout.at(root)  # the names every stage agrees on
        self.root = root
        self.checkpoints = layout.checkpoints
        self.incomplete = self.checkpoints / ".incomplete"
        self.latest_pointer = layout.latest_pointer
        self.stop_file = layout.stop
        self.done_file = layout.done
        self.manifest = root / "manifest.json"
        self.metrics = root / "metrics.jsonl"
        self.tensorboard = root / "tensorboard"
        self.loss_plot = root / "loss.png"

    def latest_checkpoint(self) -> Path | None:
        return read_latest_pointer(self.checkpoints)

    def prepare(self, config: JobConfig, resumed_step: int) -> None:
        """Record the config; forget a checkpoint half-written by a killed job and metrics past the resume point."""
        save_resolved(config, self.root / RUN_CONFIG)
        shutil.rmtree(self.incomplete, ignore_errors=True)
        truncate_metrics(self.metrics, resumed_step)

    def publish(self, step: int, info: dict, keep: int) -> Path:
        """Rename the Trainer's finished folder to step-<N>, then point ``latest`` at it, then rotate."""
        written = self.incomplete / f"{PREFIX_CHECKPOINT_DIR}-{step}"
        (written / CHECKPOINT_INFO).write_text(json.dumps(info, indent=2))
        write_file_manifest(written)  # before the rename: a published folder always lists what it holds
        final = self.checkpoints / f"step-{step}"
        if final.exists():  # left by a run that died between rename and pointer update
            shutil.rmtree(final)
        os.replace(written, final)
        write_text_atomic(self.latest_pointer, final.name + "\n")
        self.rotate(keep)
        return final

    def rotate(self, keep: int) -> None:
        steps = sorted((p for p in self.checkpoints.glob("step-*") if p.is_dir()), key=lambda p: int(p.name[5:]))
        for old in steps[:-keep]:
            shutil.rmtree(old)

    def append_metrics(self, line: dict) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps(line) + "\n")

    def finish(self, summary: dict) -> None:
        """manifest.json, loss.png, then DONE last: DONE means everything else is there."""
        write_text_atomic(self.manifest, json.dumps(summary, indent=2) + "\n")
        plot_loss(self.metrics, self.loss_plot)
        write_text_atomic(self.done_file, summary["final_checkpoint"] + "\n")


def check_checkpoint(folder: Path, lora: bool, expect_trained: bool) -> None:
    """Fail loudly if a saved checkpoint lacks the weights gather needs (for LoRA: checkpoints.check_adapter)."""
    if not lora:
        if not any((folder / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json")):
            raise RuntimeError(f"{folder}: no model.safetensors was saved (under ZeRO-3 set "
                               "stage3_gather_16bit_weights_on_model_save: true in the DeepSpeed config)")
        return
    if not (folder / "adapter_model.safetensors").is_file() or not (folder / "adapter_config.json").is_file():
        raise RuntimeError(f"{folder}: the LoRA adapter (adapter_model.safetensors + adapter_config.json) was not saved")
    check_adapter(folder, expect_trained)


def resume_point(checkpoints: Path, fallback: bool, is_main: bool) -> tuple[Path | None, list[str]]:
    """``resumable_checkpoint`` as rank 0 finds it: rank 0 alone hashes the checkpoint's files (every rank would
    read the same ones, every rank's ZeRO shards among them) and broadcasts its verdict, so all ranks resume
    from the same step, or all fail with its message."""
    verdict = None
    if is_main:
        try:
            verdict = resumable_checkpoint(checkpoints, fallback)
        except CheckpointError as e:
            verdict = str(e)
    verdict = broadcast_object_list([verdict])[0]
    if isinstance(verdict, str):
        raise CheckpointError(verdict)
    return verdict


# ---------------------------------------------------------------- stopping


class StopRequest:
    """A wish to stop at the next step boundary: SIGTERM or SIGUSR1 to any worker, or the run's STOP file.

    Every rank calls ``agreed`` at every step boundary; an all-reduce (MAX) makes one rank's wish everyone's,
    so all ranks save the same step together and exit 0. It is accelerate's ``reduce``, which is what
    ``Accelerator.check_trigger`` runs; the trigger itself is not used because it lives on the Trainer's
    Accelerator, which callbacks are not given, while ``reduce`` needs only the shared ``PartialState``.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self, stop_file: Path):
        self.stop_file = stop_file
        self.signalled = False

    @contextmanager
    def signals_caught(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _handle(self, signum: int, frame) -> None:
        self.signalled = True

    def agreed(self, device: torch.device) -> bool:
        wish = torch.tensor([int(self.signalled or self.stop_file.exists())], device=device)
        return bool(reduce(wish, reduction="max").item())


# ---------------------------------------------------------------- Trainer additions


def timed(batches: Iterator, meter: WindowMeter) -> Iterator:
    """Pass batches through, adding the time spent waiting for each to the meter."""
    while True:
        started = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            return
        meter.data_wait += time.perf_counter() - started
        yield batch


class PackedTrainer(Trainer):
    """The Trainer plus token accounting: the collator's per-batch stats feed throughput, packing and MFU."""

    def __init__(self, *args, meter: WindowMeter, **kwargs):
        super().__init__(*args, **kwargs)
        self.meter = meter

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batches, num_items = super().get_batch_samples(timed(epoch_iterator, self.meter), num_batches, device)
        for batch in batches:
            self.meter.add(batch.pop("stats"))  # not a model input
        return batches, num_items

    def _save_checkpoint(self, model, trial) -> None:
        with disk_full_reported(Path(self.args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"):
            super()._save_checkpoint(model, trial)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:  # a training-step log, reached by every rank at the same step: the summary is collective
            logs.update({k: v for k, v in self.meter.summary(self.args.device).items() if v is not None})
            # The Trainer's "epoch" counts passes over the run's stream (one); this counts passes over the data.
            global_batch = self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
            logs["data_epoch"] = self.state.global_step * global_batch / len(self.train_dataset.rows)
        super().log(logs, *args, **kwargs)


class RunCallback(TrainerCallback):
    """Everything training writes to the run folder (rank 0 only), and the collective decisions before it."""

    def __init__(self, run: RunFolder, stop: StopRequest, meter: WindowMeter, config: JobConfig, info: dict):
        self.run, self.stop, self.meter, self.config, self.info = run, stop, meter, config, info

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.run.prepare(self.config, state.global_step)
        PartialState().wait_for_everyone()
        self.meter.restart()

    def on_step_end(self, args, state, control, **kwargs):
        if self.stop.agreed(args.device):
            control.should_save = control.should_training_stop = True

    def on_save(self, args, state, control, **kwargs):
        PartialState().wait_for_everyone()  # every rank has written its part
        failure = None
        if state.is_world_process_zero:
            try:
                self.check_and_publish(state.global_step)
            except Exception as e:  # noqa: BLE001 - any failure here must reach every rank, or they would hang
                failure = f"{type(e).__name__}: {e}"
        failure = broadcast_object_list([failure])[0]  # rank 0's verdict, so all ranks fail (or go on) together
        if failure:
            raise RuntimeError(f"checkpoint of step {state.global_step} failed: {failure}")
        self.meter.restart()  # the save is not training time

    def check_and_publish(self, step: int) -> None:
        # Rank 0 alone reads the saved files: on a shared file system other nodes may not see them yet.
        # Update 1 may run at learning rate 0 (warmup starts there), so zero weights are only wrong from step 2.
        check_checkpoint(self.run.incomplete / f"{PREFIX_CHECKPOINT_DIR}-{step}", self.config.lora.enabled,
                         expect_trained=step >= 2)
        self.run.publish(step, {**self.info, "step": step}, self.config.train.save_total_limit)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            self.run.append_metrics(metrics_line(state.global_step, logs))

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.run.stop_file.unlink(missing_ok=True)  # honoured (or moot): a requeued job trains on
        if state.global_step < state.max_steps:
            return
        losses = [line["loss"] for line in read_metrics(self.run.metrics) if line.get("loss") is not None]
        self.run.finish({
            "final_checkpoint": f"checkpoints/step-{state.global_step}",
            "step": state.global_step,
            "config": RUN_CONFIG,
            "final_loss": losses[-1] if losses else None,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **self.info,
        })


class ProgressBar(TrainerCallback):
    """Rank 0's bar: step of max_steps, ETA (tqdm's), and the last logged loss and real tokens/s."""

    def __init__(self):
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, unit="step", dynamic_ncols=True,
                            mininterval=1.0 if sys.stderr.isatty() else 30.0)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", tok_s=f"{logs.get('tokens_per_s', 0):,.0f}")

    def on_train_end(self, args, state, control, **kwargs):
        self.close()

    def close(self) -> None:
        """End the bar's line, also when training fails, so an error message starts a line of its own."""
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------- the stage


def training_arguments(config: JobConfig, plan: BatchPlan, choices: Choices, runtime: Runtime, run: RunFolder) -> TrainingArguments:
    """The Trainer's settings. Built before the model: under ZeRO-3 it is what makes from_pretrained shard
    the weights while loading (DeepSpeed's zero.Init) instead of loading the whole model on every rank."""
    t = config.train
    return TrainingArguments(
        output_dir=str(run.incomplete),
        per_device_train_batch_size=plan.micro_batch,
        gradient_accumulation_steps=plan.accumulation,
        max_steps=t.max_steps,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=math.ceil(t.warmup_ratio * t.max_steps),
        optim=t.optimizer,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        average_tokens_across_devices=True,  # loss per trained token over all micro-batches and ranks
        gradient_checkpointing=t.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        torch_compile=t.torch_compile,
        use_liger_kernel=t.liger_kernel,
        bf16=choices.dtype == "bf16",
        fp16=choices.dtype == "fp16",
        # Without a GPU Accelerate must be told, or torchrun-started workers do not form a (gloo) group.
        use_cpu=not runtime.gpu,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=None,  # rotation is RunFolder.rotate's, over complete step folders only
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        report_to="none",  # TensorBoard is added with the run folder's own directory
        disable_tqdm=False,
        seed=t.seed,
        train_sampling_strategy="sequential",  # TrainingStream already holds the seeded order
        remove_unused_columns=False,
        label_names=["labels"],
        ddp_find_unused_parameters=False,
        ddp_timeout=config.distributed.timeout_minutes * 60,
    )


def math_settings(config: JobConfig, choices: Choices) -> dict:
    """The settings, by config key, that change what a step computes. A resumed run must keep them: the
    checkpoint's optimizer and scheduler states (the base learning rate among them) would silently win over
    new values, or the curve would mix two setups. The data is covered by the packed fingerprint."""
    t, lora, quant = config.train, config.lora, config.quant
    settings = {"train.learning_rate": t.learning_rate, "train.lr_scheduler": t.lr_scheduler,
                "train.warmup_ratio": t.warmup_ratio, "train.optimizer": t.optimizer,
                "train.weight_decay": t.weight_decay, "train.max_grad_norm": t.max_grad_norm,
                "model.dtype": choices.dtype, "quant.load_in_4bit": quant.load_in_4bit}
    if lora.enabled:
        settings.update({"lora.r": lora.r, "lora.alpha": lora.alpha, "lora.dropout": lora.dropout,
                         "lora.target_modules": lora.target_modules})
    if quant.load_in_4bit:
        settings.update({"quant.quant_type": quant.quant_type, "quant.double_quant": quant.double_quant,
                         "quant.quant_storage": quant.quant_storage})
    return settings


def run_info(config: JobConfig, plan: BatchPlan, runtime: Runtime, manifest: dict, choices: Choices) -> dict:
    """What a checkpoint and the run manifest record about how the run was made."""
    return {
        "max_steps": config.train.max_steps,
        "world_size": plan.world_size,
        "global_batch_size": plan.global_batch,
        "micro_batch_size": plan.micro_batch,
        "gradient_accumulation_steps": plan.accumulation,
        "deepspeed_zero_stage": runtime.zero_stage,
        "lora": config.lora.enabled,
        "load_in_4bit": config.quant.load_in_4bit,
        "seed": config.train.seed,
        "shuffle": config.train.shuffle,
        "packed_fingerprint": manifest["fingerprint"],
        "settings": math_settings(config, choices),
    }


def check_resumable(checkpoint: Path, info: dict) -> None:
    """Refuse a resume whose settings differ from the checkpoint's, naming every differing key. Every
    checkpoint that passes its file check records them: both arrived in the same fcdist version."""
    saved = json.loads((checkpoint / CHECKPOINT_INFO).read_text())
    keys = RESUME_KEYS + (("world_size",) if info["deepspeed_zero_stage"] else ())  # ZeRO shards are per rank
    then = {**{key: saved.get(key) for key in keys}, **saved.get("settings", {})}
    now = {**{key: info[key] for key in keys}, **info["settings"]}
    differing = [key for key in now | then if then.get(key) != now.get(key)]
    if differing:
        detail = ", ".join(f"{key} (checkpoint: {then.get(key)!r}, now: {now.get(key)!r})" for key in differing)
        raise SetupError(f"{checkpoint} cannot be resumed with these settings: {detail}; "
                         "restore them (train.max_steps may change) or train under a new output.name")


def flop_model(model, model_config) -> FlopModel:
    trainable, frozen = parameter_counts(model)
    return FlopModel(trainable, frozen, model_config.num_hidden_layers, model_config.hidden_size)


def train(config: JobConfig, callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Train (or resume) the run of ``config``; returns its latest complete checkpoint.

    ``callbacks`` are extra Trainer callbacks (tests use one to stop a run at a chosen step).
    """
    run = RunFolder(config.run_dir)
    if run.done_file.is_file():
        final = config.run_dir / run.done_file.read_text().strip()
        print(f"{config.run_dir} is DONE (final checkpoint {final}); remove {run.done_file} to train it further")
        return final
    if not is_main_process():  # the job's rank 0 holds the run's lock for all its ranks
        return train_locked(config, run, callbacks)
    with acquire(config.run_dir):
        return train_locked(config, run, callbacks)


def train_locked(config: JobConfig, run: RunFolder, callbacks: Sequence[TrainerCallback]) -> Path:
    """``train`` once the run folder is this job's."""
    from transformers import AutoConfig, set_seed

    runtime = detect_runtime()
    model_config = AutoConfig.from_pretrained(config.model.name_or_path, revision=config.model.revision,
                                              trust_remote_code=config.model.trust_remote_code)
    config, tuning = tune(config, model_config, config.train.global_batch_size // runtime.world_size,
                          runtime.zero_stage, runtime.liger, gpu_memory(runtime.gpu, runtime.device))
    plan = plan_batches(config.train, runtime.world_size)
    choices = resolve_choices(config, runtime)
    tokenizer = load_tokenizer(config)
    try:
        manifest = check_manifest(config, tokenizer)
    except (FileNotFoundError, ValueError) as e:
        raise SetupError(str(e)) from e
    info = run_info(config, plan, runtime, manifest, choices)
    check_document_isolation(model_config, choices, runtime.device)  # before TrainingArguments: see its docstring

    args = training_arguments(config, plan, choices, runtime, run)  # forms the process group resume_point needs
    # Resuming unpickles the Trainer's and DeepSpeed's states: the run folder is trusted as this job's own.
    resume_from, skipped = resume_point(run.checkpoints, config.train.resume_fallback, args.process_index == 0)
    if resume_from is not None:
        check_resumable(resume_from, info)
    set_seed(config.train.seed)  # LoRA's initial weights
    model = load_model(config, choices, runtime)
    stream = TrainingStream(load_packed_rows(config, manifest), config.train.max_steps * plan.global_batch,
                            config.train.seed, config.train.shuffle)
    meter = WindowMeter(flop_model(model, model_config), device_peak_flops(), plan.world_size)
    stop = StopRequest(run.stop_file)
    progress = ProgressBar()
    is_main = args.process_index == 0
    watchdog = HangWatchdog(run.root, config.distributed, args.process_index, args.world_size)
    if is_main:
        if tuning:
            print(f"fcdist train: {tuning}")
        for reason in skipped:
            print(f"fcdist train: skipping an incomplete checkpoint (train.resume_fallback): {reason}")
        print(f"fcdist train: {config.run_dir}: {plan.world_size} process(es) x micro-batch {plan.micro_batch} x "
              f"{plan.accumulation} accumulation = {plan.global_batch} rows/step, {choices.dtype}, "
              f"{choices.attn_implementation}, ZeRO-{runtime.zero_stage}, {len(stream.rows)} packed rows, "
              + (f"resuming from {resume_from}" if resume_from else "from scratch"))

    trainer = PackedTrainer(
        model=model,
        args=args,
        train_dataset=stream,
        data_collator=PackedCollator(pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                                     else tokenizer.eos_token_id, flatten=choices.flatten_rows),
        processing_class=tokenizer,  # saved with each checkpoint, for gather and infer
        callbacks=[RunCallback(run, stop, meter, config, info), watchdog, progress, *tensorboard(config, run, is_main),
                   *callbacks],
        meter=meter,
    )
    trainer.remove_callback(ProgressCallback)
    with stop.signals_caught(), watchdog:
        try:
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        except torch.OutOfMemoryError as e:
            raise SetupError(out_of_memory(config, trainer.state.global_step, runtime.device)) from e
        finally:
            progress.close()
    latest = run.latest_checkpoint()
    if is_main:
        state = "DONE" if trainer.state.global_step >= config.train.max_steps else "stopped, resumable"
        print(f"fcdist train: {config.run_dir}: {state} at step {trainer.state.global_step}; latest checkpoint {latest}")
    return latest


def out_of_memory(config: JobConfig, step: int, device: torch.device) -> str:
    """What ran out of memory, named by the settings that decide it (a step's memory does not grow with time,
    so this happens at the first step or after a resume, not hours in)."""
    train = config.train
    return (f"out of memory on {device} in step {step + 1}: train.micro_batch_size={train.micro_batch_size} rows of "
            f"data.max_length={config.data.max_length} tokens, train.gradient_checkpointing="
            f"{str(train.gradient_checkpointing).lower()}, quant.dequantized_copy={str(config.quant.dequantized_copy).lower()}; "
            "lower train.micro_batch_size, set train.gradient_checkpointing=true, or let train.tune=auto choose "
            "(`fcdist plan --gpu TYPE` estimates the peak)")


def tensorboard(config: JobConfig, run: RunFolder, is_main: bool) -> list[TrainerCallback]:
    if config.output.report_to != "tensorboard":
        return []
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    # Only rank 0 gets a writer: the others' callbacks then do nothing.
    return [TensorBoardCallback(SummaryWriter(str(run.tensorboard)) if is_main else None)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist train",
        usage="accelerate launch --config_file configs/accelerate/X.yaml launch/train.py --config C [key=value ...]\n"
              "       fcdist train --config C [key=value ...]",
        description="Train on the packed shards of `fcdist preprocess`; resumes from runs/<name>/checkpoints/latest.",
    )
    add_config_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # DeepSpeed calls a deprecated torch collective every step; the warning would bury the log.
    warnings.filterwarnings("ignore", message=".*all_gather_into_tensor.*is deprecated")
    # transformers 5.2x renames gradient_checkpointing to activation_checkpointing; 5.17 (the GPU machines')
    # knows only the old name, so fcdist keeps it and silences the rename notice.
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*is deprecated", category=FutureWarning)
    try:
        train(load_config(args.config, args.overrides))
    except InputError as e:  # SetupError and ConfigError are InputErrors
        print(f"fcdist train: error: {e}", file=sys.stderr)
        return 1
    leave_process_group()
    return 0


def leave_process_group() -> None:
    """Leave the process group together. A rank that exits while another still holds the group, or the
    rendezvous store on the head node has gone, can abort at interpreter exit ("terminate called without
    an active exception", SIGABRT), failing a run that finished. Plain torch, not PartialState: after a run
    that was already DONE no group was formed, and PartialState() would form one only to leave it."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
