"""What fcdist trusts in a run folder, on a real tiny run (4 steps, checkpoints at 2 and 4):

gather never unpickles (a planted DeepSpeed pickle does not run), every published checkpoint records its files
and a missing or changed one is refused by resume and gather (or skipped for the previous complete checkpoint
when train.resume_fallback asks for it), and the ``latest`` pointer names a step folder of this run only.
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fcdist import gather
from fcdist.checkpoints import FILE_MANIFEST, CheckpointError, write_file_manifest
from fcdist.config import load_config, save_resolved
from fcdist.preprocess import shards
from fcdist.train.metrics import read_metrics
from fcdist.train.trainer import RunFolder, main, train

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["data.max_length=256", "data.overlong=drop", "train.global_batch_size=4", "train.max_steps=4",
         "train.save_steps=2", "train.logging_steps=1"]


class RunsCode:
    """Unpickling this opens (creates) ``marker``: what a crafted DeepSpeed state could do with os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir, synth_data_file):
    config = load_config(ROOT / "configs/jobs/tiny-cpu.yaml", [
        f"model.name_or_path={tiny_model_dir}", f"data.source={synth_data_file}",
        f"output.root={tmp_path_factory.mktemp('runs')}", "output.name=trusted", *SMALL])
    shards.preprocess_shard(config, 0, 1)
    shards.write_manifest(config, 1)
    train(config)
    return config


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run this test may damage; DONE removed and max_steps raised, so it resumes."""
    config = copy.deepcopy(trained)
    config.output.root = str(tmp_path / "runs")
    shutil.copytree(trained.run_dir, config.run_dir)
    (config.run_dir / "DONE").unlink()
    config.train.max_steps = 6
    return config


def plant_pickle(step: Path, marker: Path) -> None:
    """What DeepSpeed's zero_to_fp32 reads first: <step>/latest -> global_stepN/mp_rank_00_model_states.pt."""
    (step / "global_step4").mkdir()
    torch.save(RunsCode(marker), step / "global_step4" / "mp_rank_00_model_states.pt")
    (step / "latest").write_text("global_step4")


def test_gather_never_unpickles_a_planted_deepspeed_state(run, tmp_path, capsys):
    step, marker = run.run_dir / "checkpoints" / "step-4", tmp_path / "code-ran"
    plant_pickle(step, marker)
    assert gather.main(["--run", str(run.run_dir)]) == 1
    assert "global_step4/mp_rank_00_model_states.pt: not among the files" in capsys.readouterr().err
    assert not marker.exists()

    write_file_manifest(step)  # a sender who also rewrote the file list: the adapter is read from safetensors
    out = gather.gather(run.run_dir)
    assert not marker.exists()
    gathered, saved = (load_file(str(d / "adapter_model.safetensors")) for d in (out / "adapter", step))
    assert gathered.keys() == saved.keys() and all(torch.equal(gathered[k], saved[k]) for k in saved)

    (step / "adapter_model.safetensors").unlink()  # only the pickles left: refused unless the user trusts them
    write_file_manifest(step)
    assert gather.main(["--run", str(run.run_dir)]) == 1
    assert "--trust-pickles" in capsys.readouterr().err
    assert not marker.exists()


def test_gather_refuses_a_changed_adapter(run, capsys):
    adapter = run.run_dir / "checkpoints" / "step-4" / "adapter_model.safetensors"
    data = bytearray(adapter.read_bytes())
    data[-1] ^= 1
    adapter.write_bytes(bytes(data))
    assert gather.main(["--run", str(run.run_dir)]) == 1
    assert "step-4/adapter_model.safetensors: changed since the run wrote it" in capsys.readouterr().err
    assert not (run.run_dir / "gathered").exists()


def test_every_published_checkpoint_lists_its_files(trained):
    import json

    for step in ("step-2", "step-4"):
        folder = trained.run_dir / "checkpoints" / step
        listed = json.loads((folder / FILE_MANIFEST).read_text())["files"]
        on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != FILE_MANIFEST}
        assert set(listed) == on_disk and {"optimizer.pt", "scheduler.pt", "adapter_model.safetensors"} <= on_disk
        assert listed["optimizer.pt"]["size"] == (folder / "optimizer.pt").stat().st_size


@pytest.mark.parametrize("damage", ["missing", "changed"])
def test_resume_refuses_a_checkpoint_missing_or_changing_a_file(run, damage, capsys):
    optimizer = run.run_dir / "checkpoints" / "step-4" / "optimizer.pt"
    if damage == "missing":
        optimizer.unlink()
    else:
        data = bytearray(optimizer.read_bytes())
        data[len(data) // 2] ^= 1
        optimizer.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"step-4/optimizer\.pt: (missing|changed since the run wrote it)"):
        train(run)
    assert main(["--config", str(save_resolved(run, run.run_dir.parent / "job.yaml"))]) == 1
    err = capsys.readouterr().err
    assert "optimizer.pt" in err and "train.resume_fallback=true" in err
    assert [line["step"] for line in read_metrics(run.run_dir / "metrics.jsonl")] == [1, 2, 3, 4], "nothing trained"


def test_resume_fallback_takes_the_newest_complete_checkpoint_and_says_so(run, capsys):
    (run.run_dir / "checkpoints" / "step-4" / "scheduler.pt").unlink()
    run.train.resume_fallback = True
    final = train(run)
    out = capsys.readouterr().out
    assert "skipping" in out and "step-4/scheduler.pt: missing" in out
    assert f"resuming from {run.run_dir / 'checkpoints' / 'step-2'}" in out
    assert final == run.run_dir / "checkpoints" / "step-6" and (run.run_dir / "DONE").is_file()
    assert [line["step"] for line in read_metrics(run.run_dir / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]


def launch_two(config, log: Path) -> subprocess.CompletedProcess:
    """``accelerate launch`` of two CPU processes, as users start them."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    command = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file",
               "configs/accelerate/cpu_multiprocess.yaml", "--num_processes", "2", "--main_process_port", str(port),
               "launch/train.py", "--config", str(save_resolved(config, log.with_suffix(".yaml")))]
    with open(log, "w") as out:
        return subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=300)


@pytest.mark.slow
def test_two_processes_resume_or_refuse_together_on_rank_0s_verdict(run, tmp_path):
    """Rank 0 alone checks the checkpoint's files and broadcasts what it found: both ranks refuse the damaged
    newest checkpoint with its message and exit instead of waiting for each other; with train.resume_fallback both
    resume from the step-2 rank 0 chose and finish the run."""
    (run.run_dir / "checkpoints" / "step-4" / "scheduler.pt").unlink()
    refused = launch_two(run, tmp_path / "refused.log")
    log = (tmp_path / "refused.log").read_text()
    assert refused.returncode != 0 and log.count("fcdist train: error:") == 2, log[-3000:]
    assert log.count("step-4/scheduler.pt: missing from the checkpoint") == 2
    run.train.resume_fallback = True
    resumed = launch_two(run, tmp_path / "resumed.log")
    log = (tmp_path / "resumed.log").read_text()
    assert resumed.returncode == 0, log[-3000:]
    assert f"resuming from {run.run_dir / 'checkpoints' / 'step-2'}" in log and (run.run_dir / "DONE").is_file()
    assert [line["step"] for line in read_metrics(run.run_dir / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("pointer, message", [
    ("", "is empty"),
    ("../../other-run/checkpoints/step-40", "must name a step-<N> folder of this run"),
    ("step-9", "names step-9, which does not exist"),
])
def test_a_bad_latest_pointer_is_refused_by_train_and_gather(run, pointer, message, capsys):
    (run.run_dir / "checkpoints" / "latest").write_text(pointer + "\n")
    assert main(["--config", str(save_resolved(run, run.run_dir.parent / "job.yaml"))]) == 1
    assert message in capsys.readouterr().err
    assert gather.main(["--run", str(run.run_dir)]) == 1
    assert message in capsys.readouterr().err
    with pytest.raises(CheckpointError, match=message):
        RunFolder(run.run_dir).latest_checkpoint()


def test_a_step_folder_linked_from_elsewhere_is_refused(run, tmp_path):
    other = tmp_path / "other-run-step"
    shutil.copytree(run.run_dir / "checkpoints" / "step-4", other)
    os.symlink(other, run.run_dir / "checkpoints" / "step-40")
    (run.run_dir / "checkpoints" / "latest").write_text("step-40\n")
    with pytest.raises(CheckpointError, match="step-40 is a link"):
        RunFolder(run.run_dir).latest_checkpoint()
