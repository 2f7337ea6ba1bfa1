"""Two "nodes" on one host: two launchers meeting at a c10d rendezvous, as slurm/train.sh starts them,
train the same losses as one launcher with the same world size and global batch (issue G's CPU part).

The launch commands are the ones the SLURM template builds (`fcdist.stages.accelerate_command`); only the
scheduler is left out, so this runs without the cluster.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from fcdist.config import save_resolved
from fcdist.preprocess import shards
from fcdist.stages import accelerate_command
from fcdist.train.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]
LOSS_TOLERANCE = 1e-5  # fp32 on CPU; the same ranks sum the same numbers, only the transport differs
SMALL = ["data.max_length=256", "data.overlong=drop", "train.global_batch_size=4", "train.max_steps=8",
         "train.save_steps=8", "train.logging_steps=1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_launchers(config, accelerate_config: str, num_machines: int, procs_per_node: int, log_dir: Path) -> list[float]:
    config_file = save_resolved(config, log_dir / f"{config.output.name}.yaml")
    port = free_port()
    commands = [accelerate_command(accelerate_config, ["--config", str(config_file)], num_machines=num_machines,
                                   procs_per_node=procs_per_node, machine_rank=rank, head="127.0.0.1", port=port)
                for rank in range(num_machines)]
    logs = [open(log_dir / f"{config.output.name}-{rank}.log", "w") for rank in range(num_machines)]
    procs = [subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT) for command, log in zip(commands, logs)]
    codes = [proc.wait(timeout=400) for proc in procs]
    for log in logs:
        log.close()
    if any(codes):
        pytest.fail(f"launchers exited {codes}:\n" + (log_dir / f"{config.output.name}-0.log").read_text()[-3000:])
    return [line["loss"] for line in read_metrics(config.run_dir / "metrics.jsonl")]


@pytest.mark.slow
def test_two_launchers_with_c10d_train_the_losses_of_one_launcher(tiny_config_factory, tmp_path):
    one = tiny_config_factory(*SMALL, "output.name=one-launcher")
    shards.preprocess_shard(one, 0, 1)
    shards.write_manifest(one, 1)
    two = tiny_config_factory(*SMALL, "output.name=two-launchers", f"data.packed_dir={one.packed_dir}")

    single = run_launchers(one, "configs/accelerate/cpu_multiprocess.yaml", 1, 2, tmp_path)
    split = run_launchers(two, "configs/accelerate/multinode_cpu.yaml", 2, 1, tmp_path)

    assert len(single) == len(split) == 8
    assert max(abs(a - b) for a, b in zip(single, split)) < LOSS_TOLERANCE, (single, split)
    manifest = json.loads((two.run_dir / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and (two.run_dir / "DONE").is_file()
