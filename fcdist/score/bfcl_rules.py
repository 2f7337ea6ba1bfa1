"""The Berkeley Function Calling Leaderboard's AST rules, for ``fcdist score --rules bfcl``.

fcdist's own rules (fcdist/score/matching.py, values.py) differ where BFCL's checker is arguably wrong; this mode does what
BFCL's checker (bfcl_eval/eval_checker/ast_eval/ast_checker.py) does instead, so its numbers are the
leaderboard's. Rules, for one gold call and a predicted call:

1. The names agree; every parameter the function doc requires is given (required: the declared type
   is not marked ``, optional`` / ``Optional[...]``).
2. Every argument given is a parameter of the function and has possible answers (BFCL's
   ``{arg: [values]}``: here the answer's value, the row's ``acceptable`` values, and ``""`` when the
   argument is in ``may_omit``); an argument with no possible answers is unexpected, even at its default.
3. Every argument with possible answers is given, unless ``""`` is among them (``may_omit``).
4. A value's Python type is the declared one (an int given for a float counts as that float), or the
   type of the first possible answer (BFCL's "variable" case, then compared exactly). A list's items
   have the declared item type or that of the first item of a possible list; a possible answer that is
   not a list (``""``) waives the item check.
5. Strings compare after BFCL's normalisation (drop spaces and ``,./-_*^``, lower case, ``'`` -> ``"``),
   also the strings directly inside a list and the values of a dict (one level, as BFCL); everything else
   compares with Python's ``==`` (so ``1 == 1.0``). ``""`` for a string, or ``[]`` for a list, matches the
   possible answer ``""``.

For a row: the number of calls equals the gold's; one gold call is compared with the first predicted
call, and several with first-fit (each gold call in order takes the first free predicted call that
matches it, so any order). No call expected (BFCL's irrelevance): correct when the completion holds no
call, an unreadable completion counting as no call.
"""

from __future__ import annotations

import re
from typing import Any

from fcdist.data.xlam import Alternatives, XlamRow

BFCL_IGNORED = re.compile(r"[ ,./\-_*^]")  # BFCL's standardize_string: spaces (not tabs or newlines) and ,./-_*^
OPTIONAL_MARK = re.compile(r",\s*optional\b.*$|^\s*optional\[", re.IGNORECASE | re.DOTALL)  # as fcdist.score.values reads it
BFCL_TYPES = {
    "str": "string", "string": "string",
    "int": "integer", "integer": "integer",
    "float": "float", "number": "float",
    "bool": "boolean", "boolean": "boolean",
    "list": "array", "array": "array", "tuple": "tuple",
    "dict": "dict", "object": "dict",
}  # fmt: skip; any other declared type is BFCL's "any", which its checker treats as a string
PYTHON_TYPES = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list, "tuple": list, "dict": dict}
NO_ANSWER = ""  # BFCL's possible answer meaning "may be left out"

IRRELEVANCE = ("irrelevance", "no-call")


# ---------------------------------------------------------------- declared types


def bfcl_type(declared: Any) -> tuple[str, str | None]:
    """BFCL's (type, item type) for an xlam type string: ``"List[float], optional"`` -> ("array", "float")."""
    text = OPTIONAL_MARK.sub("", declared).strip().rstrip("]") if isinstance(declared, str) else ""
    base, _, inner = text.partition("[")
    kind = BFCL_TYPES.get(base.strip().lower(), "any")
    if kind not in ("array", "tuple"):
        return kind, None
    item = inner.split(",")[0] if kind == "tuple" else inner
    return kind, bfcl_type(item)[0] if item.strip() else None


def is_optional(param: Any) -> bool:
    return isinstance(param, dict) and isinstance(param.get("type"), str) and bool(OPTIONAL_MARK.search(param["type"]))


# ---------------------------------------------------------------- values


def standardize(value: Any) -> Any:
    """BFCL's string normalisation; other values are returned as they are."""
    return BFCL_IGNORED.sub("", value).lower().replace("'", '"') if isinstance(value, str) else value


def _first_type(possible: Any) -> type | None:
    """The type of the first possible answer that is not ``""`` (BFCL reads a "variable" from it)."""
    return next((type(answer) for answer in possible if answer != NO_ANSWER), None)


def _items_fit(value: list, answer: Any, item_type: type) -> bool:
    if type(answer) is not list:  # BFCL: a possible answer that is not a list waives the item check
        return True
    answer_type = _first_type(answer)
    return all(type(item) is item_type or type(item) is answer_type for item in value)


def _type_check(value: Any, expected: type, item_type: type | None, possible: list) -> tuple[bool, bool]:
    """(the type fits, the value is a "variable": compared exactly, without normalisation)."""
    answer_type = _first_type(possible)
    variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        fits = item_type is None or any(_items_fit(value, answer, item_type) for answer in possible)
        return fits, variable
    return answer_type is not None and type(value) is answer_type, True


def _dict_fits(value: dict, answer: Any) -> bool:
    if not isinstance(answer, dict) or value.keys() != answer.keys():
        return False
    return all(standardize(value[key]) == standardize(answer[key]) for key in answer)


def _dict_list_fits(value: list, answer: Any) -> bool:
    if not isinstance(answer, (list, str)) or len(value) != len(answer):  # "" has length 0: it accepts []
        return False
    return all(isinstance(v, dict) and _dict_fits(v, a) for v, a in zip(value, answer))


def _standard_list(answer: Any) -> list | None:
    return [standardize(item) for item in answer] if isinstance(answer, (list, str)) else None  # "" -> []


def value_failure(arg: str, value: Any, param: dict, possible: list) -> str | None:
    """None when ``value`` is one of the ``possible`` answers under BFCL's rules, else why not."""
    kind, item_kind = bfcl_type(param.get("type"))
    expected, item_type = PYTHON_TYPES.get(kind, str), PYTHON_TYPES.get(item_kind) if item_kind else None
    if kind == "tuple" and type(value) is tuple:
        value = list(value)
    if kind == "float" and type(value) is int:
        value = float(value)
    fits, variable = _type_check(value, expected, item_type, possible)
    if not fits:
        return f"argument {arg!r} = {value!r} has type {type(value).__name__}, expected {kind}"
    if variable:
        found = value in possible
    elif expected is dict:
        found = any(_dict_fits(value, answer) for answer in possible)
    elif expected is list and item_type is dict:
        found = any(_dict_list_fits(value, answer) for answer in possible)
    elif expected is str:
        found = standardize(value) in [standardize(a) for a in possible if type(a) is str]
    elif expected is list:
        found = [standardize(item) for item in value] in [_standard_list(a) for a in possible]
    else:
        found = value in possible
    return None if found else f"argument {arg!r} = {value!r}, expected one of {possible!r}"


# ---------------------------------------------------------------- calls and rows


def possible_answers(gold: dict, alternatives: Alternatives | None) -> dict[str, list]:
    """BFCL's ``{arg: [possible values]}`` for a gold call: the answer's value first, then the alternatives."""
    values = alternatives.values if alternatives else {}
    may_omit = alternatives.may_omit if alternatives else frozenset()
    possible = {}
    for arg in [*gold["arguments"], *sorted(may_omit - set(gold["arguments"]))]:
        listed = [gold["arguments"][arg]] if arg in gold["arguments"] else []
        listed += [v for v in values.get(arg, []) if not any(v == w and type(v) is type(w) for w in listed)]
        possible[arg] = listed + [NO_ANSWER] * (arg in may_omit)
    return possible


def call_failure(pred: dict, gold: dict, tool: dict, alternatives: Alternatives | None) -> str | None:
    """None when the predicted call matches the gold call under BFCL's rules, else the first reason."""
    if pred["name"] != gold["name"]:
        return f"called {pred['name']}, expected {gold['name']}"
    params = tool.get("parameters") or {}
    given = pred["arguments"]
    for arg, param in params.items():
        if arg not in given and not is_optional(param):
            return f"required argument {arg!r} missing"
    possible = possible_answers(gold, alternatives)
    for arg, value in given.items():
        if arg not in params or arg not in possible:
            return f"argument {arg!r} is unexpected (not among the possible answers)"
        reason = value_failure(arg, value, params[arg] if isinstance(params[arg], dict) else {}, possible[arg])
        if reason:
            return reason
    for arg, listed in possible.items():
        if arg not in given and NO_ANSWER not in listed:
            return f"argument {arg!r} missing, expected one of {listed!r}"
    return None


def _first_fit_failure(calls: list[dict], row: XlamRow, tools: dict) -> str | None:
    """BFCL's parallel rule: each gold call, in order, takes the first free predicted call that matches."""
    taken: set[int] = set()
    for number, gold in enumerate(row.answers):
        alternatives = row.acceptable[number] if row.acceptable else None
        reasons = []
        for index, call in enumerate(calls):
            if index in taken:
                continue
            reason = call_failure(call, gold, tools[gold["name"]], alternatives)
            if reason is None:
                taken.add(index)
                break
            reasons.append(reason)
        else:
            first = f" (first mismatch: {reasons[0]})" if reasons else ""
            return f"no free call matches gold call {number + 1} {gold['name']}{first}"
    return None


def row_failure(calls: list[dict], row: XlamRow) -> str | None:
    """None when the calls are correct for a row that expects calls, else the first reason."""
    if len(calls) != len(row.answers):
        return f"expected {len(row.answers)} call(s), got {len(calls)}"
    tools = {tool["name"]: tool for tool in row.tools}
    if len(row.answers) > 1:
        return _first_fit_failure(calls, row, tools)
    alternatives = row.acceptable[0] if row.acceptable else None
    reason = call_failure(calls[0], row.answers[0], tools[row.answers[0]["name"]], alternatives)
    return f"call 1 {calls[0]['name']}: {reason}" if reason else None
