"""Score generated function calls against xlam gold rows: the last pipeline stage, ``fcdist score``.

    fcdist score --gold GOLD --predictions PRED.jsonl --out REPORT.json [--lenient-strings] [--rules bfcl]

The rules (``--rules fcdist``, the default) are the Berkeley Function Calling Leaderboard's AST checker
adapted to xlam's data; ``--rules bfcl`` follows BFCL's checker exactly where fcdist's rules differ
(fcdist/score/bfcl_rules.py lists them, README.md's "Scoring rules" section shows each with an example):

1. The calls are the lines after the last ``<calls>`` (or from the start) up to the first ``</calls>``
   (or the end). Each non-empty line is a call dict (JSON or a Python literal, as the seed prints them)
   or a list of call dicts; a call is exactly ``{"name": str, "arguments": dict}``.
2. A row is correct when its calls pair one-to-one, in any order, with the gold calls.
3. A call matches a gold call when the names agree, the function is one of the row's tools, every
   argument given is a parameter, every gold argument is given with an equal value (or left out while
   the gold value is the declared default), and an argument the gold leaves out is given at its default.
   A gold row's ``acceptable`` widens this: an argument accepts any value listed for it, and one in
   ``may_omit`` may be left out.
4. Values compare by the declared xlam type: an int stands for a float but not the reverse, a bool is
   never a number, a string is never a number, lists compare in order and dicts by key, recursively.
   xlam writes many defaults as strings ("10" for an int): a default matches both as written and as
   its declared-type value. A gold value that breaks its own declared type (12345 declared "str")
   matches itself and its exact declared-type form ("12345").

The report (JSON, and a markdown table beside it) gives overall and per-category rates and, per row,
whether it was correct and the first rule it broke.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from fcdist.atomic import write_text_atomic
from fcdist.data.xlam import XlamRow, read_rows
from fcdist.score.bfcl_rules import IRRELEVANCE
from fcdist.score.bfcl_rules import row_failure as bfcl_row_failure
from fcdist.score.calls import CallParseError, parse_calls
from fcdist.score.matching import row_failure
from fcdist.score.predictions import read_predictions
from fcdist.score.report import RowScore, category, leaderboard, markdown_table, rates_by_category, rates_of

NO_PREDICTION = "no prediction"
RULES = ("fcdist", "bfcl")


def score_row(row: XlamRow, completion: str, lenient_strings: bool = False, rules: str = "fcdist") -> RowScore:
    name = category(row)
    bfcl_no_call = rules == "bfcl" and (not row.answers or name in IRRELEVANCE)
    try:
        calls = parse_calls(completion)
    except CallParseError as e:
        if bfcl_no_call:  # BFCL: a completion it cannot decode holds no call
            return RowScore(row.id, name, False, True, True, "ok")
        return RowScore(row.id, name, False, False, False, f"unparsable: {e}")
    names_match = Counter(c["name"] for c in calls) == Counter(c["name"] for c in row.answers)
    if bfcl_no_call:
        reason = f"expected no call, got {len(calls)}" if calls else None
    elif rules == "bfcl":
        reason = bfcl_row_failure(calls, row)
    else:
        reason = row_failure(calls, row, lenient_strings)
    return RowScore(row.id, name, True, names_match, reason is None, reason or "ok")


def _check_ids(gold_rows: list[XlamRow], completions: dict[str, str]) -> None:
    counts = Counter(str(row.id) for row in gold_rows)
    repeated = [row_id for row_id, count in counts.items() if count > 1]
    if repeated:
        raise ValueError(f"gold ids appear more than once: {', '.join(repeated[:5])}")
    unknown = [row_id for row_id in completions if row_id not in counts]
    if unknown:
        raise ValueError(f"prediction id(s) not in the gold set: {', '.join(unknown[:5])}")


def score(
    gold_rows: list[XlamRow],
    predictions: dict[Any, str],
    lenient_strings: bool = False,
    rules: str = "fcdist",
    skipped: int = 0,
) -> dict:
    """The report for ``predictions`` (row id -> completion); a gold row without one counts as wrong.

    parse_rate counts a missing prediction as unparsed, so every rate shares the denominator ``n``.
    ``skipped``: cases the caller read but could not turn into gold rows, so the report says how many
    were scored of how many read.
    """
    if rules not in RULES:
        raise ValueError(f"unknown scoring rules {rules!r} (expected one of {', '.join(RULES)})")
    if not gold_rows:
        raise ValueError("the gold set has no rows to score")
    completions = {str(row_id): text for row_id, text in predictions.items()}  # gold ids may be ints
    _check_ids(gold_rows, completions)
    scores = [
        score_row(row, completions[str(row.id)], lenient_strings, rules)
        if str(row.id) in completions
        else RowScore(row.id, category(row), False, False, False, NO_PREDICTION)
        for row in gold_rows
    ]
    by_category = rates_by_category(scores)
    missing = len(gold_rows) - sum(str(row.id) in completions for row in gold_rows)
    return {
        **rates_of(scores),
        "cases_read": len(gold_rows) + skipped,
        "cases_scored": len(gold_rows) - missing,  # with a prediction; the rest count as wrong
        "missing_predictions": missing,
        "rules": rules,
        "lenient_strings": lenient_strings,
        "by_category": by_category,
        "leaderboard": leaderboard(by_category),
        "per_row": [s.summary() for s in scores],
    }


def run_score(gold: str, predictions: str, out: str, lenient_strings: bool, rules: str = "fcdist") -> dict:
    """Score the files and write REPORT.json and REPORT.md beside it; returns the report."""
    gold_rows, _ = read_rows(gold, on_bad_row="error")  # skipping a gold row would shrink n silently
    completions = read_predictions(predictions, {str(row.id) for row in gold_rows})
    report = {"gold": gold, "predictions": predictions, **score(gold_rows, completions, lenient_strings, rules)}
    out_path = Path(out)
    write_text_atomic(out_path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(out_path.with_suffix(".md"), markdown_table(report))
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist score",
        usage="fcdist score --gold GOLD --predictions PRED.jsonl --out REPORT.json [--lenient-strings] [--rules bfcl]",
        description="Score generated function calls against xlam gold rows (BFCL-style AST matching).",
        epilog="Writes REPORT.json and a markdown table REPORT.md beside it, and prints the table.",
    )
    parser.add_argument("--gold", required=True, help="xlam-format gold rows (.jsonl, .json or .parquet)")
    parser.add_argument(
        "--predictions", required=True, help="jsonl, one {'id', 'completion'} object per line (text after the prompt)"
    )
    parser.add_argument("--out", required=True, help="report path (.json); the .md table is written beside it")
    parser.add_argument(
        "--lenient-strings",
        action="store_true",
        help="compare strings ignoring case, whitespace and the characters ,./-_*^ (the leaderboard's rule)",
    )
    parser.add_argument(
        "--rules",
        choices=RULES,
        default="fcdist",
        help="fcdist (default): fcdist's rules; bfcl: the Berkeley Function Calling Leaderboard's AST checker's, "
        "differences and all (README.md, 'Scoring rules: fcdist and BFCL')",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.lenient_strings and args.rules == "bfcl":
        parser.error("--lenient-strings is for --rules fcdist; --rules bfcl always normalises strings as BFCL does")
    try:
        report = run_score(args.gold, args.predictions, args.out, args.lenient_strings, args.rules)
    except (ValueError, OSError) as e:
        print(f"fcdist score: error: {e}", file=sys.stderr)
        return 2
    print(markdown_table(report), end="")
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}", file=sys.stderr)
    return 0
