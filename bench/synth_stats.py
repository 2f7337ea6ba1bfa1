"""Measure how xlam-format rows behave: the statistics that tell synthetic rows from real ones.

    python bench/synth_stats.py --synth SYNTH.jsonl [--real REAL.jsonl] [--tokenizer DIR] [--rows N]

Prints a markdown table, one column per file (any xlam-format .jsonl/.json/.parquet). With --tokenizer
it adds the rendered lengths (seed format + eos). Without --synth files it measures fresh
``fcdist synth`` rows (--rows, seed 1). The measuring functions are imported by tests/unit/test_synth.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fcdist.data.xlam import XlamRow, parse_row, read_rows
from fcdist.score.values import parse_type

MAX_LENGTH = 512  # the seed's max_length: the share of documents past it is the truncation risk
FITS_DECLARED = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
}


def _value_texts(value: Any) -> list[str]:
    """How a value would be written in a query: each item of a list or dict, bools as true/false."""
    if isinstance(value, list):
        return [text for item in value for text in _value_texts(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _value_texts(item)]
    if isinstance(value, bool):
        return [str(value).lower()]
    return [str(value)]


def _arguments(rows: list[XlamRow]):
    """(row, tool parameters, argument name, value) for every argument of every gold call."""
    for row in rows:
        params = {tool["name"]: tool.get("parameters") or {} for tool in row.tools}
        for call in row.answers:
            for name, value in call["arguments"].items():
                yield row, params[call["name"]], name, value


def _parameters(rows: list[XlamRow]) -> list[dict]:
    return [spec for row in rows for tool in row.tools for spec in (tool.get("parameters") or {}).values()
            if isinstance(spec, dict)]


def _is_optional(spec: dict) -> bool:
    return "optional" in str(spec.get("type", "")).lower()


def verbatim_share(rows: list[XlamRow]) -> float:
    """Share of argument values whose text (every item of a list) appears in the query, ignoring case."""
    hits = [all(t.lower() in row.query.lower() for t in _value_texts(v)) for row, _, _, v in _arguments(rows)]
    return sum(hits) / len(hits)


def default_shares(rows: list[XlamRow]) -> dict[str, float]:
    """Of all parameters of all offered tools: with a default, with "" as default, with a non-string default."""
    specs = _parameters(rows)
    defaults = [spec["default"] for spec in specs if "default" in spec]
    return {"has_default": len(defaults) / len(specs), "empty_default": sum(d == "" for d in defaults) / len(specs),
            "non_string_default": sum(not isinstance(d, str) for d in defaults) / len(specs)}


def tools_per_row(rows: list[XlamRow]) -> tuple[float, int]:
    counts = [len(row.tools) for row in rows]
    return sum(counts) / len(counts), max(counts)


def two_call_share(rows: list[XlamRow]) -> float:
    return sum(len(row.answers) == 2 for row in rows) / len(rows)


def several_functions_share(rows: list[XlamRow]) -> float:
    """Rows whose gold calls name two or more different functions (parallel-multiple)."""
    return sum(len({call["name"] for call in row.answers}) > 1 for row in rows) / len(rows)


def type_mismatch_share(rows: list[XlamRow]) -> float:
    """Share of argument values (with a declared type scoring understands) that break that type.

    A null value is left out: xlam writes it for "not given", whatever the type.
    """
    fits = []
    for _, params, name, value in _arguments(rows):
        spec = parse_type((params.get(name) or {}).get("type"))
        if spec is not None and value is not None:
            fits.append(FITS_DECLARED[spec.kind](value))
    return 1 - sum(fits) / len(fits)


def optional_argument_share(rows: list[XlamRow]) -> float:
    """Of the arguments the gold calls give, the share that fill optional parameters."""
    optional = [_is_optional(params.get(name) or {}) for _, params, name, _ in _arguments(rows)]
    return sum(optional) / len(optional)


def token_lengths(rows: list[XlamRow], tokenizer) -> list[int]:
    """Tokens per rendered training document (seed format + eos), as preprocessing counts them."""
    from fcdist.data.render import render_text

    texts = [render_text(row.query, row.tools, row.answers) + tokenizer.eos_token for row in rows]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def measure(rows: list[XlamRow], tokenizer=None) -> dict[str, str]:
    """The table's column for ``rows``: measure name -> formatted value."""
    defaults = default_shares(rows)
    mean_tools, max_tools = tools_per_row(rows)
    column = {
        "rows": f"{len(rows)}",
        "argument values found word for word in the query": f"{verbatim_share(rows):.0%}",
        "parameter has a default / default is \"\"": f"{defaults['has_default']:.0%} / {defaults['empty_default']:.0%}",
        "default is not a string": f"{defaults['non_string_default']:.0%}",
        "tools per row (mean, max)": f"{mean_tools:.2f}, {max_tools}",
        "calls per row: share with 2 calls": f"{two_call_share(rows):.0%}",
        "share of rows calling several functions": f"{several_functions_share(rows):.0%}",
        "argument type differs from the declared type": f"{type_mismatch_share(rows):.0%}",
        "optional parameters used in calls": f"{optional_argument_share(rows):.0%}",
    }
    if tokenizer is not None:
        lengths = sorted(token_lengths(rows, tokenizer))
        column["tokens per document: median, p90, max"] = (
            f"{statistics.median(lengths):.0f}, {lengths[int(0.9 * (len(lengths) - 1))]}, {lengths[-1]}")
        column[f"documents over {MAX_LENGTH} tokens"] = f"{sum(n > MAX_LENGTH for n in lengths) / len(lengths):.0%}"
    return column


def markdown(columns: dict[str, dict[str, str]]) -> str:
    names = list(columns)
    lines = ["| measure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for measure_name in next(iter(columns.values())):
        lines.append(f"| {measure_name} | " + " | ".join(columns[n][measure_name] for n in names) + " |")
    return "\n".join(lines) + "\n"


def synth_rows(count: int, seed: int) -> list[XlamRow]:
    from fcdist.data.synth import generate_rows

    return [parse_row(raw, f"synth seed {seed}") for raw in generate_rows(count, seed)]


def valid_rows(path: str) -> list[XlamRow]:
    """The rows fcdist would train on: bad ones (the real sample repeats a tool name twice) are left out, said on stderr."""
    rows, skipped = read_rows(path, on_bad_row="skip")
    if skipped.skipped:
        print(f"{path}: {skipped.summary()}", file=sys.stderr)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        usage="python bench/synth_stats.py [--synth FILE ...] [--real FILE] [--tokenizer DIR] [--rows N]",
        description="Print the synthetic-vs-real statistics table for xlam-format files.")
    parser.add_argument("--synth", nargs="*", default=[], metavar="FILE", help="xlam-format files to measure (default: fresh synth rows)")
    parser.add_argument("--real", metavar="FILE", help="a real xlam sample, measured in its own column")
    parser.add_argument("--tokenizer", metavar="DIR", help="a tokenizer folder: adds rendered document lengths")
    parser.add_argument("--rows", type=int, default=3000, metavar="N", help="fresh synth rows when no --synth file is given (default: 3000)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    sources: dict[str, Callable[[], list[XlamRow]]] = {path: (lambda p=path: valid_rows(p)) for path in args.synth}
    if not sources:
        sources[f"synth ({args.rows} rows, seed 1)"] = lambda: synth_rows(args.rows, seed=1)
    if args.real:
        sources[f"real: {Path(args.real).name}"] = lambda: valid_rows(args.real)
    print(markdown({name: measure(load(), tokenizer) for name, load in sources.items()}), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
