"""Benchmark (not a test): preprocess 60,000 synthetic rows with the tiny tokenizer and print throughput.

    python bench/preprocess.py [--rows 60000] [--shards 1 2]

Runs each shard count in its own processes (one process per shard, side by side, as a SLURM array would)
and prints rows/s and tokens/s per process, wall time and the packing efficiency. Target on a 2-core
machine: the 60k rows in at most 60 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def prepare(workdir: Path, rows: int) -> tuple[Path, Path]:
    from fcdist.data.synth import main as synth
    from fcdist.model.tiny import build_tiny_model

    data = workdir / "synth.jsonl"
    synth(["--out", str(data), "--rows", str(rows), "--seed", "1"])
    return data, build_tiny_model(workdir / "model", seed=0)


def run_shards(workdir: Path, data: Path, model: Path, num_shards: int) -> dict:
    """Start one `fcdist preprocess` process per shard at once; the last to finish writes the manifest."""
    base = [sys.executable, "-m", "fcdist.cli", "preprocess", "--config", str(ROOT / "configs/jobs/tiny-cpu.yaml"),
            f"model.name_or_path={model}", f"data.source={data}", f"output.root={workdir}",
            f"output.name=shards{num_shards}", "data.num_proc=1"]
    started = time.perf_counter()
    procs = [subprocess.Popen(base + ["--shard", str(i), "--num-shards", str(num_shards)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(num_shards)]
    if any(p.wait() for p in procs):
        raise SystemExit(f"a preprocess process failed for {num_shards} shard(s)")
    wall = time.perf_counter() - started
    subprocess.run(base + ["--num-shards", str(num_shards), "--finalize"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    manifest = json.loads((workdir / f"shards{num_shards}" / "packed" / "manifest.json").read_text())
    return {"wall": wall, "manifest": manifest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(usage="python bench/preprocess.py [--rows N] [--shards K ...]", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        data, model = prepare(workdir, args.rows)
        print(f"\n{'shards':>6} {'wall s':>8} {'rows/s/proc':>12} {'tokens/s/proc':>14} {'rows/s total':>13} {'packing eff':>11}")
        for num_shards in args.shards:
            result = run_shards(workdir, data, model, num_shards)
            shards, wall = result["manifest"]["shards"], result["wall"]
            per_proc_rows = sum(s["rows_in"] / s["seconds"] for s in shards) / len(shards)
            per_proc_tokens = sum(s["tokens"] / s["seconds"] for s in shards) / len(shards)
            print(f"{num_shards:>6} {wall:>8.1f} {per_proc_rows:>12.0f} {per_proc_tokens:>14.0f} "
                  f"{args.rows / wall:>13.0f} {result['manifest']['packing_efficiency']:>11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
