"""Score generated function calls against xlam gold rows: the last pipeline stage, ``fcdist score``.

    fcdist score --gold GOLD --predictions PRED.jsonl --out REPORT.json [--lenient-strings] [--rules bfcl]

The rules (``--rules fcdist``, the default) are the Berkeley Function Calling Leaderboard's AST checker
adapted to xlam's data; ``--rules bfcl`` follows BFCL's checker exactly where fcdist's rules differ
(fcdist/score_bfcl.py lists them, README.md's "Scoring rules" section shows each with an example):

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
import ast
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fcdist.atomic import write_text_atomic
from fcdist.data.render import CALLS_CLOSE, CALLS_OPEN
from fcdist.data.xlam import Alternatives, XlamRow, read_rows
from fcdist.errors import InputError
from fcdist.score_bfcl import IRRELEVANCE, leaderboard, leaderboard_markdown
from fcdist.score_bfcl import row_failure as bfcl_row_failure

CATEGORIES = ("simple", "multiple", "parallel", "parallel-multiple", "no-call")
CALL_KEYS = {"name", "arguments"}
LENIENT_IGNORED = re.compile(r"[\s,./\-_*^]")  # the leaderboard's string normalization, plus case
OPTIONAL_SUFFIX = re.compile(r",\s*optional\b.*$", re.IGNORECASE | re.DOTALL)
SCALAR_KINDS = {
    "str": "str", "string": "str",
    "int": "int", "integer": "int",
    "float": "float", "number": "float",
    "bool": "bool", "boolean": "bool",
}  # fmt: skip
NO_DEFAULT = object()  # a parameter without a declared default (None is a legitimate default)
NO_PREDICTION = "no prediction"
RULES = ("fcdist", "bfcl")


class CallParseError(ValueError):
    """A completion whose calls cannot be read; the message names the line and why."""


@dataclass(frozen=True)
class TypeSpec:
    """A declared xlam parameter type that scoring understands."""

    kind: str  # str, int, float, bool, list or dict
    text: str  # the declared type as written (without ", optional"), for messages
    item: "TypeSpec | None" = None  # a list's elements or a dict's values; None compares by plain equality


@dataclass(frozen=True)
class RowScore:
    id: Any
    category: str
    parsed: bool  # the completion held readable calls
    names_match: bool  # the multiset of called function names equals the gold's
    correct: bool
    reason: str  # "ok", or the first rule the row broke

    def summary(self) -> dict:
        return {"id": self.id, "category": self.category, "correct": self.correct, "reason": self.reason}


# ---------------------------------------------------------------- rule 1: reading the calls


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_literal(text: str) -> Any:
    """A value written as JSON or as a Python literal (the seed prints calls with Python's ``str``)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"neither JSON nor a Python literal: {_clip(text)}") from None


def calls_block(completion: str) -> str:
    """The text after the last ``<calls>`` (or from the start) up to the first ``</calls>`` (or the end)."""
    start = completion.rfind(CALLS_OPEN)
    body = completion[start + len(CALLS_OPEN) :] if start >= 0 else completion
    return body.split(CALLS_CLOSE, 1)[0]


def _check_call(value: Any, line_number: int) -> dict:
    if not isinstance(value, dict) or set(value) != CALL_KEYS:
        raise CallParseError(
            f"calls line {line_number}: a call must be a dict with exactly 'name' and 'arguments', "
            f"got {_clip(repr(value))}"
        )
    if not isinstance(value["name"], str):
        raise CallParseError(f"calls line {line_number}: 'name' must be a string, got {value['name']!r}")
    if not isinstance(value["arguments"], dict):
        raise CallParseError(f"calls line {line_number}: 'arguments' of {value['name']} must be a dict")
    return value


def _parse_line(line: str, line_number: int) -> list[dict]:
    try:
        value = read_literal(line)
    except ValueError as e:
        raise CallParseError(f"calls line {line_number} is {e}") from None
    items = value if isinstance(value, list) else [value]
    return [_check_call(item, line_number) for item in items]


def parse_calls(completion: str) -> list[dict]:
    """The calls of a completion, in order; raises CallParseError naming the first unreadable line."""
    calls = []
    for line_number, line in enumerate(calls_block(completion).splitlines(), 1):
        if line.strip():
            calls.extend(_parse_line(line.strip(), line_number))
    return calls


# ---------------------------------------------------------------- rule 4: declared types and values


def _split_top_level(text: str) -> list[str]:
    """Split ``"str, List[int]"`` at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return parts + [text[start:].strip()]


def parse_type(declared: Any) -> TypeSpec | None:
    """The TypeSpec of an xlam type string, or None for a type compared by plain equality (Any, unknown)."""
    if not isinstance(declared, str):
        return None
    text = OPTIONAL_SUFFIX.sub("", declared.strip())
    match = re.fullmatch(r"(\w+)\s*(?:\[(.*)\])?", text, re.DOTALL)
    if match is None:
        return None
    base, args = match[1].lower(), _split_top_level(match[2]) if match[2] else []
    if base == "optional" and len(args) == 1:
        return parse_type(args[0])
    if base in SCALAR_KINDS and not args:
        return TypeSpec(SCALAR_KINDS[base], text)
    if base == "list" and len(args) <= 1:
        return TypeSpec("list", text, parse_type(args[0]) if args else None)
    if base == "dict" and len(args) in (0, 2):
        return TypeSpec("dict", text, parse_type(args[1]) if args else None)
    return None


def _identical(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (so True is not 1 and 3 is not 3.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    return a == b


def normalize_string(text: str) -> str:
    return LENIENT_IGNORED.sub("", text).lower()


def _scalar_matches(pred: Any, gold: Any, kind: str, lenient: bool) -> bool:
    if kind == "str":  # exact equality was settled by _identical; only the lenient rule is left
        both_strings = isinstance(pred, str) and isinstance(gold, str)
        return lenient and both_strings and normalize_string(pred) == normalize_string(gold)
    if kind == "bool":
        return isinstance(pred, bool) and pred == gold
    if isinstance(pred, bool) or not isinstance(pred, (int, float)):
        return False
    if kind == "int":
        return isinstance(pred, int) and pred == gold
    return pred == gold  # a float parameter accepts an int of the same value


def _compare_list(pred: Any, gold: Any, spec: TypeSpec, lenient: bool, where: str) -> str | None:
    if not isinstance(pred, list) or not isinstance(gold, list):
        return f"{where} = {_clip(repr(pred))}, expected {spec.text} {_clip(repr(gold))}"
    if len(pred) != len(gold):
        return f"{where} has {len(pred)} item(s), expected {len(gold)}: {_clip(repr(gold))}"
    for i, (p, g) in enumerate(zip(pred, gold)):
        reason = compare_values(p, g, spec.item, lenient, f"{where}[{i}]")
        if reason:
            return reason
    return None


def _compare_dict(pred: Any, gold: Any, spec: TypeSpec, lenient: bool, where: str) -> str | None:
    if not isinstance(pred, dict) or not isinstance(gold, dict):
        return f"{where} = {_clip(repr(pred))}, expected {spec.text} {_clip(repr(gold))}"
    if pred.keys() != gold.keys():
        return f"{where} has keys {sorted(pred, key=repr)}, expected {sorted(gold, key=repr)}"
    for key in gold:
        reason = compare_values(pred[key], gold[key], spec.item, lenient, f"{where}[{key!r}]")
        if reason:
            return reason
    return None


def compare_values(pred: Any, gold: Any, spec: TypeSpec | None, lenient: bool, where: str) -> str | None:
    """None when ``pred`` equals ``gold`` under the declared type, else a reason that starts with ``where``."""
    if _identical(pred, gold):  # also covers gold values that break their own declared type (xlam has some)
        return None
    if spec is not None and spec.kind in SCALAR_KINDS.values() and not _fits(gold, spec.kind):
        gold = as_declared(gold, spec)  # xlam's type quirk: the declared type's form of the gold value
        if _identical(pred, gold):
            return None
    if spec is None:
        return None if pred == gold else f"{where} = {_clip(repr(pred))}, expected {_clip(repr(gold))}"
    if spec.kind == "list":
        return _compare_list(pred, gold, spec, lenient, where)
    if spec.kind == "dict":
        return _compare_dict(pred, gold, spec, lenient, where)
    if _scalar_matches(pred, gold, spec.kind, lenient):
        return None
    return f"{where} = {_clip(repr(pred))}, expected {spec.text} {_clip(repr(gold))}"


def _fits(value: Any, kind: str) -> bool:
    """``value`` has the Python type of the declared kind (an int fits a float)."""
    if kind in ("str", "list", "dict"):
        return isinstance(value, {"str": str, "list": list, "dict": dict}[kind])
    if kind == "bool" or isinstance(value, bool):
        return kind == "bool" and isinstance(value, bool)
    return isinstance(value, int) or (kind == "float" and isinstance(value, float))


def as_declared(value: Any, spec: TypeSpec | None) -> Any:
    """``value`` in its declared scalar type when the conversion is exact ("10" -> 10, 12345 -> "12345"), else as is."""
    if spec is None or _fits(value, spec.kind):
        return value
    if spec.kind == "str":
        exact = isinstance(value, (int, float)) and not isinstance(value, bool)
        return str(value) if exact else value
    if not isinstance(value, str):
        return value
    try:
        converted = _convert_default(value.strip(), spec.kind)
    except (ValueError, KeyError):
        return value  # not convertible: compare the value as written
    return converted if spec.kind != "int" or str(converted) == value.strip() else value


def _convert_default(text: str, kind: str) -> Any:
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        return {"true": True, "false": False}[text.lower()]
    value = read_literal(text)
    if not isinstance(value, list if kind == "list" else dict):
        raise ValueError(f"not a {kind}: {text}")
    return value


def declared_default(param: dict, spec: TypeSpec | None) -> Any:
    """The parameter's default in its declared type (xlam often writes "10" for 10); NO_DEFAULT if none."""
    if "default" not in param:
        return NO_DEFAULT
    default = param["default"]
    if not isinstance(default, str) or spec is None or spec.kind == "str":
        return default
    return as_declared(default, spec)


def _is_default(value: Any, param: dict, spec: TypeSpec | None, lenient: bool) -> bool:
    """``value`` equals the declared default, as written ("10") or in its declared type (10)."""
    written = param.get("default", NO_DEFAULT)
    if written is NO_DEFAULT:
        return False
    return _identical(value, written) or compare_values(value, declared_default(param, spec), spec, lenient, "") is None


# ---------------------------------------------------------------- rule 3: one call against one gold call


def _declared(params: dict, arg: str) -> tuple[dict, TypeSpec | None]:
    param = params.get(arg)
    param = param if isinstance(param, dict) else {}
    return param, parse_type(param.get("type"))


def _check_gold_argument(
    arg: str, gold_value: Any, given: dict, params: dict, lenient: bool, alternatives: Alternatives | None
) -> str | None:
    param, spec = _declared(params, arg)
    if arg in given:
        reason = compare_values(given[arg], gold_value, spec, lenient, f"argument {arg!r}")
        if reason is None or alternatives is None:
            return reason
        others = alternatives.values.get(arg, [])
        return None if any(compare_values(given[arg], v, spec, lenient, "") is None for v in others) else reason
    if _is_default(gold_value, param, spec, lenient) or (alternatives and arg in alternatives.may_omit):
        return None
    return f"argument {arg!r} missing, expected {_clip(repr(gold_value))}"


def _check_extra_argument(arg: str, value: Any, params: dict, lenient: bool) -> str | None:
    param, spec = _declared(params, arg)
    if "default" not in param:
        return f"argument {arg!r} = {_clip(repr(value))} given, but the expected call leaves it out (no default)"
    if _is_default(value, param, spec, lenient):
        return None
    written, typed = param["default"], declared_default(param, spec)
    shown = repr(written) if _identical(written, typed) else f"{written!r} ({typed!r} as {spec.text})"
    return f"argument {arg!r} = {_clip(repr(value))} given, but the expected call leaves it at its default {shown}"


def call_matches(
    pred: dict, gold: dict, tool: dict, lenient_strings: bool = False, alternatives: Alternatives | None = None
) -> str | None:
    """None when the predicted call matches the gold call of ``tool`` (or one of its ``alternatives``), else
    the first reason it does not."""
    name = pred["name"]
    if name != gold["name"]:
        return f"called {name}, expected {gold['name']}"
    if name != tool.get("name"):
        return f"{name} is not the tool {tool.get('name')}"
    params = tool.get("parameters") or {}
    given, expected = pred["arguments"], gold["arguments"]
    for arg in given:
        if arg not in params:
            return f"argument {arg!r} is not a parameter of {name}"
    for arg, gold_value in expected.items():
        reason = _check_gold_argument(arg, gold_value, given, params, lenient_strings, alternatives)
        if reason:
            return reason
    for arg in (a for a in given if a not in expected):
        reason = _check_extra_argument(arg, given[arg], params, lenient_strings)
        if reason:
            return reason
    return None


# ---------------------------------------------------------------- rule 2: pairing the calls of a row


def max_matching(fits: list[list[bool]]) -> list[int | None]:
    """For each predicted call, its gold partner in a maximum one-to-one pairing (augmenting paths).

    Greedy first-fit is not enough: with duplicate or overlapping calls it can take the partner that
    another call needed and report a correct row as wrong.
    """
    owner: dict[int, int] = {}  # gold index -> predicted index

    def augment(pred: int, seen: set[int]) -> bool:
        for gold, fits_here in enumerate(fits[pred]):
            if fits_here and gold not in seen:
                seen.add(gold)
                if gold not in owner or augment(owner[gold], seen):
                    owner[gold] = pred
                    return True
        return False

    for pred in range(len(fits)):
        augment(pred, set())
    partners: list[int | None] = [None] * len(fits)
    for gold, pred in owner.items():
        partners[pred] = gold
    return partners


def _unpaired_reason(pred: int, calls: list[dict], gold: list[dict], verdicts: list[list], partners: list) -> str:
    """Why a predicted call found no partner: its mismatch with a free gold call of the same name."""
    name = calls[pred]["name"]
    free = [g for g in range(len(gold)) if g not in partners and gold[g]["name"] == name]
    if free:
        return verdicts[pred][free[0]]
    expected = ", ".join(call["name"] for call in gold)
    return f"one call too many to {name} (expected calls: {expected})"


def _row_failure(calls: list[dict], row: XlamRow, lenient: bool) -> str | None:
    gold = row.answers
    if len(calls) != len(gold):
        return f"expected {len(gold)} call(s), got {len(calls)}"
    tools = {tool["name"]: tool for tool in row.tools}
    for number, call in enumerate(calls, 1):
        if call["name"] not in tools:
            return f"call {number} {call['name']}: not one of the row's tools"
    accept = row.acceptable or [None] * len(gold)
    verdicts = [[call_matches(call, g, tools[g["name"]], lenient, a) for g, a in zip(gold, accept)] for call in calls]
    partners = max_matching([[verdict is None for verdict in line] for line in verdicts])
    if None not in partners:
        return None
    pred = partners.index(None)
    return f"call {pred + 1} {calls[pred]['name']}: {_unpaired_reason(pred, calls, gold, verdicts, partners)}"


def category(row: XlamRow) -> str:
    """The row's own ``category``, else: simple / multiple (one call, one or several tools), parallel /
    parallel-multiple (several calls), no-call."""
    if row.category is not None:
        return row.category
    if not row.answers:
        return "no-call"
    if len(row.answers) == 1:
        return "simple" if len(row.tools) == 1 else "multiple"
    return "parallel" if len({call["name"] for call in row.answers}) == 1 else "parallel-multiple"


def _score_row_bfcl(row: XlamRow, completion: str) -> RowScore:
    name = category(row)
    try:
        calls = parse_calls(completion)
    except CallParseError as e:
        if not row.answers or name in IRRELEVANCE:  # BFCL: a completion it cannot decode holds no call
            return RowScore(row.id, name, False, True, True, "ok")
        return RowScore(row.id, name, False, False, False, f"unparsable: {e}")
    names_match = Counter(c["name"] for c in calls) == Counter(c["name"] for c in row.answers)
    if not row.answers or name in IRRELEVANCE:
        reason = f"expected no call, got {len(calls)}" if calls else None
    else:
        reason = bfcl_row_failure(calls, row)
    return RowScore(row.id, name, True, names_match, reason is None, reason or "ok")


def score_row(row: XlamRow, completion: str, lenient_strings: bool = False, rules: str = "fcdist") -> RowScore:
    if rules == "bfcl":
        return _score_row_bfcl(row, completion)
    try:
        calls = parse_calls(completion)
    except CallParseError as e:
        return RowScore(row.id, category(row), False, False, False, f"unparsable: {e}")
    names_match = Counter(c["name"] for c in calls) == Counter(c["name"] for c in row.answers)
    reason = _row_failure(calls, row, lenient_strings)
    return RowScore(row.id, category(row), True, names_match, reason is None, reason or "ok")


# ---------------------------------------------------------------- the report


def _rates(scores: list[RowScore]) -> dict:
    n = len(scores)
    return {
        "n": n,
        "parse_rate": sum(s.parsed for s in scores) / n,
        "name_accuracy": sum(s.names_match for s in scores) / n,
        "exact_match": sum(s.correct for s in scores) / n,
    }


def _check_ids(gold_rows: list[XlamRow], completions: dict[str, str]) -> None:
    counts = Counter(str(row.id) for row in gold_rows)
    repeated = [row_id for row_id, count in counts.items() if count > 1]
    if repeated:
        raise ValueError(f"gold ids appear more than once: {', '.join(repeated[:5])}")
    unknown = [row_id for row_id in completions if row_id not in counts]
    if unknown:
        raise ValueError(f"prediction id(s) not in the gold set: {', '.join(unknown[:5])}")


def _by_category(scores: list[RowScore]) -> dict:
    """Rates per category: fcdist's own categories first, then the others (a gold row's own) as they come."""
    present = dict.fromkeys(s.category for s in scores)
    names = [name for name in CATEGORIES if name in present] + [name for name in present if name not in CATEGORIES]
    return {name: _rates([s for s in scores if s.category == name]) for name in names}


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
    by_category = _by_category(scores)
    missing = len(gold_rows) - sum(str(row.id) in completions for row in gold_rows)
    return {
        **_rates(scores),
        "cases_read": len(gold_rows) + skipped,
        "cases_scored": len(gold_rows) - missing,  # with a prediction; the rest count as wrong
        "missing_predictions": missing,
        "rules": rules,
        "lenient_strings": lenient_strings,
        "by_category": by_category,
        "leaderboard": leaderboard(by_category),
        "per_row": [s.summary() for s in scores],
    }


def markdown_table(report: dict) -> str:
    lines = ["| category | n | parse rate | name accuracy | exact match |", "|---|--:|--:|--:|--:|"]
    rows = [("all", report)] + list(report["by_category"].items())
    for name, rates in rows:
        lines.append(
            f"| {name} | {rates['n']} | {rates['parse_rate']:.1%} | {rates['name_accuracy']:.1%} "
            f"| {rates['exact_match']:.1%} |"
        )
    cases = f"{report['cases_scored']} of {report['cases_read']} cases read had a prediction ({report['rules']} rules)"
    board = "Laid out like the leaderboard's AST columns (summary: unweighted mean of the four AST categories):"
    return "\n".join(lines) + f"\n\n{cases}.\n\n{board}\n\n" + leaderboard_markdown(report["leaderboard"])


# ---------------------------------------------------------------- files and the command line


def _prediction_record(line: str, where: str) -> dict:
    try:
        record = json.loads(line)
    except ValueError as e:
        raise ValueError(f"{where}: not a JSON object ({e})") from None
    if not isinstance(record, dict) or "id" not in record:
        raise ValueError(f"{where}: a prediction needs an 'id'")
    if not isinstance(record.get("completion"), str):
        raise ValueError(f"{where}: prediction id {record['id']!r} needs a string 'completion'")
    return record


def _text_line(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: not UTF-8 text (byte {e.start} of the line); expected one JSON object per line") from None


def read_predictions(path: str, gold_ids: set[str]) -> dict[str, str]:
    """Completions by id from a jsonl file; an id outside the gold set or seen twice is an error."""
    completions: dict[str, str] = {}
    with open(path, "rb") as f:  # bytes, so a line that is not UTF-8 is reported with its number
        for line_number, raw in enumerate(f, 1):
            where = f"{path}:{line_number}"
            line = _text_line(raw, where)
            if not line.strip():
                continue
            record = _prediction_record(line, where)
            key = str(record["id"])
            if key not in gold_ids:
                raise ValueError(f"{where}: prediction id {record['id']!r} is not in the gold set")
            if key in completions:
                raise ValueError(f"{where}: prediction id {record['id']!r} appears a second time")
            completions[key] = record["completion"]
    return completions


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


if __name__ == "__main__":
    sys.exit(main())
