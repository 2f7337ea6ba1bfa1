"""Packed vs unpacked training on the tiny model, side by side: real (non-pad) tokens/s and packing efficiency.

    python bench/train_packing.py [--rows 600] [--steps 20] [--max-length 512] [--global-batch 8]

Hardware: any CPU (the numbers below are from a 2-core CI machine). Builds the tiny model and synthetic
rows in a scratch folder, preprocesses them twice (data.packing=true / false), trains --steps LoRA steps of
the same global batch (rows per step) with each, and prints one table. The first WARMUP_STEPS logged steps
are left out. "real tok/s" is the median step, "best tok/s" the fastest one (the least disturbed by other
processes on a shared machine). Not a test: numbers vary with the machine and its load.

Packing efficiency is real tokens over token slots: "data" over max_length-long rows (what preprocessing
reports), "computed" over the padded batches the model actually ran (rows are padded to the longest in
the micro-batch, rounded up to 8).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

WARMUP_STEPS = 2
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a plain checkout


def build_inputs(work: Path, rows: int) -> tuple[Path, Path]:
    from fcdist.data.synth import generate_rows
    from fcdist.model.tiny import build_tiny_model

    model = build_tiny_model(work / "model", seed=0, force=True)
    data = work / "synth.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in generate_rows(rows, seed=0)))
    return model, data


def run_mode(packing: bool, model: Path, data: Path, work: Path, args: argparse.Namespace) -> dict:
    from fcdist.config import load_config
    from fcdist.preprocess import shards
    from fcdist.runtime import load_tokenizer
    from fcdist.train.metrics import read_metrics
    from fcdist.train.trainer import train

    name = "packed" if packing else "unpacked"
    config = load_config(ROOT / "configs/jobs/tiny-cpu.yaml", [
        f"model.name_or_path={model}", f"data.source={data}", f"data.packing={str(packing).lower()}",
        f"data.max_length={args.max_length}", "data.num_shards=1", f"data.packed_dir={work / name / 'packed'}",
        f"output.root={work}", f"output.name={name}", f"train.max_steps={args.steps}",
        f"train.global_batch_size={args.global_batch}", "train.logging_steps=1", f"train.save_steps={args.steps}",
        "output.report_to=none"])
    tokenizer = load_tokenizer(config)
    shards.preprocess_shard(config, 0, 1, tokenizer)
    manifest = json.loads(shards.write_manifest(config, 1, tokenizer).read_text())
    train(config)
    steps = read_metrics(config.run_dir / "metrics.jsonl")[WARMUP_STEPS:]
    return {
        "mode": name,
        "rows": manifest["totals"]["packed_rows"],
        "docs_per_row": manifest["totals"]["rows_kept"] / manifest["totals"]["packed_rows"],
        "data_efficiency": manifest["packing_efficiency"],
        "computed_efficiency": statistics.mean(s["packing_efficiency"] for s in steps),
        "tokens_per_s": statistics.median(s["tokens_per_s"] for s in steps),
        "best_tokens_per_s": max(s["tokens_per_s"] for s in steps),
        "step_s": statistics.median(s["window_s"] for s in steps),
    }


def print_table(results: list[dict]) -> None:
    header = (f"{'mode':<9} {'rows':>6} {'docs/row':>9} {'eff (data)':>11} {'eff (computed)':>15} "
              f"{'real tok/s':>11} {'best tok/s':>11} {'s/step':>7}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['mode']:<9} {r['rows']:>6} {r['docs_per_row']:>9.2f} {r['data_efficiency']:>11.3f} "
              f"{r['computed_efficiency']:>15.3f} {r['tokens_per_s']:>11,.0f} {r['best_tokens_per_s']:>11,.0f} {r['step_s']:>7.2f}")
    packed, unpacked = results
    print(f"\npacked / unpacked real tokens/s: {packed['tokens_per_s'] / unpacked['tokens_per_s']:.2f}x "
          f"(same rows per step; a packed row carries {packed['docs_per_row']:.2f} documents)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/train_packing.py",
        usage="python bench/train_packing.py [--rows N] [--steps N] [--max-length N] [--global-batch N] [--work DIR]",
        description="Tiny-model CPU training throughput with packed vs unpacked rows.",
    )
    parser.add_argument("--rows", type=int, default=600, help="synthetic rows (default: 600)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per mode (default: 20)")
    parser.add_argument("--max-length", type=int, default=512, help="data.max_length (default: 512)")
    parser.add_argument("--global-batch", type=int, default=8, help="rows per step in both modes (default: 8)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temporary folder)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="fcdist-bench-"))
    model, data = build_inputs(work, args.rows)
    results = [run_mode(packing, model, data, work, args) for packing in (True, False)]
    print(f"\ntiny model, CPU, {args.steps} steps of {args.global_batch} rows x max_length {args.max_length} "
          f"(medians after {WARMUP_STEPS} warm-up steps); scratch: {work}\n")
    print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
