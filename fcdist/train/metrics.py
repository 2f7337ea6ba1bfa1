"""Training metrics per logging window, written by rank 0 to runs/<name>/metrics.jsonl and plotted in loss.png.

One line per logging step: ``step``; ``loss`` (per trained token, mean over the window's steps);
``learning_rate``; ``grad_norm`` (before clipping); ``tokens_per_s`` (real, non-pad tokens of all ranks per
second of wall time); ``mfu``; ``peak_memory_gib`` (highest GPU allocation of any rank, null on CPU);
``packing_efficiency`` (real tokens / token slots the model computed); ``data_wait_s`` (seconds the slowest
rank waited for batches in the window); ``window_s``; ``data_epoch`` (passes over the packed rows); ``time``.

MFU (model FLOPs utilisation) counts the useful work of the real tokens only, over the bf16 dense peak of
all GPUs of the run:

    FLOPs per step = (6 x trainable + 4 x frozen) x real tokens + 12 x layers x hidden x attention pairs

- 6 per trainable parameter and token: forward 2, backward 4 (activation and weight gradients);
- 4 per frozen parameter and token: forward 2, backward 2 (activation gradients only; LoRA's base);
  parameters exclude the input embedding (a lookup); 4-bit weights count at their real size;
- attention: QK^T and AV cost 4 x hidden FLOPs per (query, key) pair and layer forward, 12 with backward;
  a token at position p of its document attends to p + 1 keys (causal, never across documents), so the
  pairs are summed over real tokens. Padding, recomputation (gradient checkpointing) and masked work count
  for nothing, so MFU measures the work that trains the model.
MFU is left out on CPU and on GPUs missing from PEAK_BF16_FLOPS.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate.utils import reduce

from fcdist.errors import InputError
from fcdist.train.data import BatchStats

# Dense bf16 tensor-core peak per GPU (no sparsity), from the vendors' data sheets; matched in this order
# against torch.cuda.get_device_name(), so more specific names come first.
PEAK_BF16_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H200", 989e12),
    ("H800", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("A10G", 125e12),
    ("A10", 125e12),
    ("RTX 4090", 165e12),
    ("V100", 125e12),  # fp16: V100 has no bf16
)


def device_peak_flops() -> float | None:
    """bf16 dense peak of this process's GPU, or None on CPU or an unknown GPU."""
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAK_BF16_FLOPS if key in name), None)


@dataclass(frozen=True)
class FlopModel:
    """The numbers the MFU formula needs, fixed for a run."""

    trainable_params: int
    frozen_params: int
    layers: int
    hidden: int

    def step_flops(self, real_tokens: float, attention_pairs: float) -> float:
        dense = (6 * self.trainable_params + 4 * self.frozen_params) * real_tokens
        return dense + 12 * self.layers * self.hidden * attention_pairs


@dataclass
class WindowMeter:
    """This rank's counts since the last logging step; ``summary`` combines all ranks (a collective)."""

    flops: FlopModel
    peak_flops: float | None
    world_size: int
    real_tokens: int = 0
    slots: int = 0
    attention_pairs: int = 0
    data_wait: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def add(self, stats: BatchStats) -> None:
        self.real_tokens += stats.real_tokens
        self.slots += stats.slots
        self.attention_pairs += stats.attention_pairs

    def restart(self) -> None:
        """Start a new window (after a log, or after a checkpoint so its write time is not counted as training)."""
        self.real_tokens = self.slots = self.attention_pairs = 0
        self.data_wait = 0.0
        self.started = time.perf_counter()

    def summary(self, device: torch.device) -> dict[str, float | None]:
        """Throughput metrics of the window over all ranks; every rank must call it at the same step."""
        elapsed = time.perf_counter() - self.started
        peak_memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
        sums = torch.tensor([self.real_tokens, self.slots, self.attention_pairs], dtype=torch.float64, device=device)
        maxes = torch.tensor([self.data_wait, peak_memory], dtype=torch.float64, device=device)
        real, slots, pairs = reduce(sums, reduction="sum").tolist()
        data_wait, peak_memory = reduce(maxes, reduction="max").tolist()
        mfu = None
        if self.peak_flops:
            mfu = self.flops.step_flops(real, pairs) / elapsed / (self.peak_flops * self.world_size)
        self.restart()
        return {
            "tokens_per_s": real / elapsed,
            "mfu": mfu,
            "peak_memory_gib": peak_memory if device.type == "cuda" else None,
            "packing_efficiency": real / slots if slots else None,
            "data_wait_s": data_wait,
            "window_s": elapsed,
        }


METRIC_KEYS = ("loss", "learning_rate", "grad_norm", "tokens_per_s", "mfu", "peak_memory_gib",
               "packing_efficiency", "data_wait_s", "window_s", "data_epoch")


def metrics_line(step: int, logs: dict) -> dict:
    """One metrics.jsonl record: the step, then the known keys (None where not measured here)."""
    return {"step": step, **{key: logs.get(key) for key in METRIC_KEYS}, "time": round(time.time(), 3)}


def read_metrics(path: Path) -> list[dict]:
    """The records of metrics.jsonl. A last line without its newline that does not parse is what a kill
    mid-write leaves: it is dropped (a resumed run logs that step again). Any other bad line is an InputError
    naming the file and line."""
    if not path.is_file():
        return []
    *lines, last = path.read_bytes().split(b"\n")  # last: b"" when the file ends with its newline
    records = [_metrics_record(line, f"{path}:{number}") for number, line in enumerate(lines, 1) if line.strip()]
    if last.strip():
        try:
            records.append(_metrics_record(last, f"{path}:{len(lines) + 1}"))
        except InputError:
            pass  # torn by a kill mid-write
    return records


def _metrics_record(line: bytes, where: str) -> dict:
    try:
        record = json.loads(line)
    except ValueError as e:  # UnicodeDecodeError too
        raise InputError(f"{where}: not a metrics line ({e}); the file is damaged: remove that line") from None
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        raise InputError(f"{where}: not a metrics line (a JSON object with an integer 'step'); remove that line")
    return record


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop lines after ``last_step``: a resumed run trains those steps again and logs them anew.

    Not rebuilt from the checkpoint's ``trainer_state.json`` log_history, though it holds the same fcdist fields
    (PackedTrainer.log adds them before the Trainer records them): it lacks each line's ``time``, and a damaged
    line (other than a torn last one) should be named, not silently replaced."""
    kept = [line for line in read_metrics(path) if line["step"] <= last_step]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(line) + "\n" for line in kept))
    tmp.replace(path)


def plot_loss(metrics_path: Path, out: Path) -> Path | None:
    """loss.png: training loss (and learning rate) against step; None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")  # no display on cluster nodes
    import matplotlib.pyplot as plt

    lines = [line for line in read_metrics(metrics_path) if line.get("loss") is not None]
    if not lines:
        return None
    figure, loss_axis = plt.subplots(figsize=(8, 4.5))
    loss_axis.plot([l["step"] for l in lines], [l["loss"] for l in lines], color="tab:blue", label="loss")
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("loss (per trained token)")
    lr_axis = loss_axis.twinx()
    lr_axis.plot([l["step"] for l in lines], [l["learning_rate"] for l in lines], color="tab:gray", alpha=0.5)
    lr_axis.set_ylabel("learning rate", color="tab:gray")
    loss_axis.set_title(out.parent.name)
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
