"""`fcdist train` when the disk fills during a checkpoint save, and when metrics.jsonl was torn or damaged:
one line naming the folder or line, `latest` still at the previous complete checkpoint, and a rerun resumes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from transformers import Trainer

from fcdist import cli
from fcdist.train.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]


def the_error_line(capsys, stage: str) -> str:
    err = capsys.readouterr().err  # also holds the progress bar
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"fcdist {stage}: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_a_full_disk_keeps_the_last_checkpoint_and_a_torn_metrics_line_is_dropped(
        tiny_model_dir, synth_data_file, tmp_path, capsys, monkeypatch):
    args = ["--config", str(ROOT / "configs/jobs/tiny-cpu.yaml"), f"model.name_or_path={tiny_model_dir}",
            f"data.source={synth_data_file}", f"output.root={tmp_path}", "data.num_shards=1", "data.max_length=256",
            "data.overlong=drop", "train.global_batch_size=4", "train.max_steps=4", "train.save_steps=2",
            "train.logging_steps=1", "output.report_to=none"]
    assert cli.main(["preprocess", *args]) == 0
    run = tmp_path / "tiny-cpu"
    save_optimizer = Trainer._save_optimizer_and_scheduler

    def full_disk_at_step_4(self, output_dir):
        save_optimizer(self, output_dir)
        if output_dir.endswith("checkpoint-4"):  # the disk fills after the weights and optimizer.pt are written
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(output_dir, "scheduler.pt"))

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", full_disk_at_step_4)
    capsys.readouterr()
    assert cli.main(["train", *args]) == 1
    line = the_error_line(capsys, "train")
    assert f"{run}/checkpoints/.incomplete/checkpoint-4: the disk is full" in line and "No space left" in line
    assert (run / "checkpoints" / "latest").read_text() == "step-2\n"
    assert not (run / "checkpoints" / ".incomplete" / "checkpoint-4").exists(), "the partial checkpoint is removed"
    monkeypatch.undo()

    metrics = run / "metrics.jsonl"
    lines = metrics.read_text().splitlines(keepends=True)
    metrics.write_text(lines[0] + "{oops\n" + "".join(lines[1:]))  # damaged inside: named, not guessed at
    assert cli.main(["train", *args]) == 1
    assert f"{metrics}:2: not a metrics line" in the_error_line(capsys, "train")

    metrics.write_text("".join(lines) + '{"step": 5, "lo')  # a kill mid-write tears the last line
    assert cli.main(["train", *args]) == 0
    assert [record["step"] for record in read_metrics(metrics)] == [1, 2, 3, 4]
    assert (run / "checkpoints" / "latest").read_text() == "step-4\n" and (run / "DONE").is_file()
