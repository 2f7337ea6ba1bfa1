"""A checkpoint that fails on rank 0 fails every rank at that step (accelerate's broadcast_object_list of rank 0's
verdict in RunCallback.on_save), instead of rank 1 training on into a collective rank 0 never joins."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fcdist.config import save_resolved
from fcdist.preprocess import shards
from fcdist.runtime import load_tokenizer
from fcdist.train.trainer import RunFolder

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_save_failing_on_rank_zero_fails_both_ranks_at_that_step(tiny_config_factory, tmp_path):
    config = tiny_config_factory(
        "output.name=verdict", "data.max_length=256", "data.overlong=drop", "data.num_shards=1",
        "train.global_batch_size=4", "train.logging_steps=1", "train.max_steps=6", "train.save_steps=2")
    tokenizer = load_tokenizer(config)
    shards.preprocess_shard(config, 0, 1, tokenizer)
    shards.write_manifest(config, 1, tokenizer)
    run = RunFolder(config.run_dir)
    run.checkpoints.mkdir(parents=True)
    (run.checkpoints / "step-2").write_text("")  # a file where rank 0 publishes step 2: rmtree fails there
    log = tmp_path / "verdict.log"
    command = [str(Path(sys.executable).parent / "accelerate"), "launch",
               "--config_file", "configs/accelerate/cpu_multiprocess.yaml", "--num_processes", "2",
               "--main_process_port", str(free_port()), "launch/train.py",
               "--config", str(save_resolved(config, log.with_suffix(".yaml")))]
    with open(log, "w") as out:
        returncode = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=LAUNCH_TIMEOUT_S).returncode
    text = log.read_text()
    assert returncode != 0
    # Both ranks raise it: rank 1 from the broadcast verdict, having written nothing wrong itself.
    assert text.count("RuntimeError: checkpoint of step 2 failed: NotADirectoryError") == 2, text[-4000:]
    assert not run.latest_pointer.exists()
