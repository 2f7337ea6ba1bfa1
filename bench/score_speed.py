"""Benchmark (not a test): rows per second of ``fcdist score``'s scoring, in each rules mode.

    python bench/score_speed.py [--rows 20000] [--seed 1] [--repeats 3]

Rows: --rows synthetic xlam rows (fcdist.data.synth); each gets a completion that alternates between its
gold answer (right) and the answer with its first call's arguments dropped (wrong), so both verdict paths
run. Times ``fcdist.score.score`` in CPU seconds of this process (parsing, matching and the report, not file reading): the best of
--repeats, once per rules mode the checkout has (an older checkout without --rules is timed as "fcdist").
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a plain checkout, or the checkout named by PYTHONPATH first


def rows_and_completions(count: int, seed: int):
    from fcdist.data.render import render_completion
    from fcdist.data.synth import generate_rows
    from fcdist.data.xlam import parse_row

    rows = [parse_row(raw, "bench") for raw in generate_rows(count, seed)]
    completions = {}
    for i, row in enumerate(rows):
        answers = row.answers if i % 2 or not row.answers else [{**row.answers[0], "arguments": {}}, *row.answers[1:]]
        completions[row.id] = render_completion(answers)
    return rows, completions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(usage="python bench/score_speed.py [--rows 20000] [--seed 1] [--repeats 3]",
                                     description="Rows per second of fcdist score, per rules mode.")
    parser.add_argument("--rows", type=int, default=20000, help="synthetic rows to score")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic rows")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per mode; the best counts")
    args = parser.parse_args(argv)
    from fcdist.score import score

    rows, completions = rows_and_completions(args.rows, args.seed)
    modes = ["fcdist", "bfcl"] if "rules" in inspect.signature(score).parameters else [None]
    for mode in modes:
        best = float("inf")
        for _ in range(args.repeats):
            start = time.process_time()  # CPU time: other processes on a shared machine do not count
            report = score(rows, completions, **({"rules": mode} if mode else {}))
            best = min(best, time.process_time() - start)
        print(f"rules={mode or 'fcdist'}: {len(rows) / best:,.0f} rows/s ({len(rows)} rows, "
              f"exact match {report['exact_match']:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
