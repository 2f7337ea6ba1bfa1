"""Rules 2 and 3 of scoring (``--rules fcdist``): one call against one gold call, and pairing a row's calls.

A call matches a gold call when the names agree, the function is one of the row's tools, every argument given
is a parameter, every gold argument is given with an equal value (or left out while the gold value is the
declared default), and an argument the gold leaves out is given at its default. A gold row's ``acceptable``
widens this: an argument accepts any value listed for it, and one in ``may_omit`` may be left out. A row is
correct when its calls pair one-to-one, in any order, with the gold calls.
"""

from __future__ import annotations

from typing import Any

from fcdist.data.xlam import Alternatives, XlamRow
from fcdist.score.calls import clip
from fcdist.score.values import TypeSpec, compare_values, declared_default, identical, is_default, parse_type

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
    if is_default(gold_value, param, spec, lenient) or (alternatives and arg in alternatives.may_omit):
        return None
    return f"argument {arg!r} missing, expected {clip(repr(gold_value))}"


def _check_extra_argument(arg: str, value: Any, params: dict, lenient: bool) -> str | None:
    param, spec = _declared(params, arg)
    if "default" not in param:
        return f"argument {arg!r} = {clip(repr(value))} given, but the expected call leaves it out (no default)"
    if is_default(value, param, spec, lenient):
        return None
    written, typed = param["default"], declared_default(param, spec)
    shown = repr(written) if identical(written, typed) else f"{written!r} ({typed!r} as {spec.text})"
    return f"argument {arg!r} = {clip(repr(value))} given, but the expected call leaves it at its default {shown}"


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


def row_failure(calls: list[dict], row: XlamRow, lenient: bool) -> str | None:
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
