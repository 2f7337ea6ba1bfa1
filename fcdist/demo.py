"""``fcdist demo``: the whole pipeline on the embedded default, locally, ending with the score table.

synth -> tiny model -> preprocess -> train (accelerate launch, as on a cluster) -> gather -> infer -> score.
Every step is the same stage entry point a user or a SLURM job runs; inputs already made are reused.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from fcdist.cli import main as fcdist
from fcdist.config import add_config_arguments, load_config

DEFAULT_CONFIG = "configs/jobs/tiny-cpu.yaml"
SYNTH_ROWS = 2000


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def run_stage(*argv: str) -> None:
    if fcdist(list(argv)) != 0:
        raise SystemExit(f"fcdist demo: `fcdist {' '.join(argv)}` failed")


def launch_training(config_path: str, overrides: list[str], accelerate_config: str) -> None:
    """Training runs under ``accelerate launch`` exactly as users and the SLURM template start it."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config,
               "launch/train.py", "--config", config_path, *overrides]
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist demo",
        usage="fcdist demo [--config C] [key=value ...]",
        description="Run synth -> tiny model -> preprocess -> train -> gather -> infer -> score locally.",
    )
    add_config_arguments(parser, f"job config (default: {DEFAULT_CONFIG})", required=False, default=DEFAULT_CONFIG)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_config(args.config, args.overrides)
    common = ["--config", args.config, *args.overrides]

    if not Path(config.data.source).exists():
        step(f"synth: {SYNTH_ROWS} rows -> {config.data.source}")
        Path(config.data.source).parent.mkdir(parents=True, exist_ok=True)
        run_stage("synth", "--out", config.data.source, "--rows", str(SYNTH_ROWS), "--seed", "0")
    if not Path(config.model.name_or_path).exists():
        step(f"tiny-model -> {config.model.name_or_path}")
        run_stage("tiny-model", "--out", config.model.name_or_path)

    step("preprocess")
    run_stage("preprocess", *common)
    step("train")
    launch_training(args.config, args.overrides, config.distributed.accelerate_config)
    step("gather")
    run_stage("gather", "--run", str(config.run_dir))
    step("infer on the held-out rows")
    predictions = config.run_dir / "predictions.jsonl"
    run_stage("infer", "--run", str(config.run_dir), "--data", str(config.packed_dir / "heldout.jsonl"), "--out", str(predictions))
    step("score")
    run_stage("score", "--gold", str(config.packed_dir / "heldout.jsonl"), "--predictions", str(predictions),
              "--out", str(config.run_dir / "score" / "report.json"))
    return 0
