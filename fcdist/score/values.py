"""Rule 4 of scoring: declared xlam types, and comparing a value with the gold value under its type.

An int stands for a float but not the reverse, a bool is never a number, a string is never a number, lists
compare in order and dicts by key, recursively. xlam writes many defaults as strings ("10" for an int): a
default matches both as written and as its declared-type value. A gold value that breaks its own declared
type (12345 declared "str") matches itself and its exact declared-type form ("12345").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fcdist.score.calls import clip, read_literal

LENIENT_IGNORED = re.compile(r"[\s,./\-_*^]")  # the leaderboard's string normalization, plus case
OPTIONAL_SUFFIX = re.compile(r",\s*optional\b.*$", re.IGNORECASE | re.DOTALL)
SCALAR_KINDS = {
    "str": "str", "string": "str",
    "int": "int", "integer": "int",
    "float": "float", "number": "float",
    "bool": "bool", "boolean": "bool",
}  # fmt: skip
NO_DEFAULT = object()  # a parameter without a declared default (None is a legitimate default)


@dataclass(frozen=True)
class TypeSpec:
    """A declared xlam parameter type that scoring understands."""

    kind: str  # str, int, float, bool, list or dict
    text: str  # the declared type as written (without ", optional"), for messages
    item: "TypeSpec | None" = None  # a list's elements or a dict's values; None compares by plain equality


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


def identical(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (so True is not 1 and 3 is not 3.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(identical(a[k], b[k]) for k in a)
    return a == b


def normalize_string(text: str) -> str:
    return LENIENT_IGNORED.sub("", text).lower()


def _scalar_matches(pred: Any, gold: Any, kind: str, lenient: bool) -> bool:
    if kind == "str":  # exact equality was settled by identical; only the lenient rule is left
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
        return f"{where} = {clip(repr(pred))}, expected {spec.text} {clip(repr(gold))}"
    if len(pred) != len(gold):
        return f"{where} has {len(pred)} item(s), expected {len(gold)}: {clip(repr(gold))}"
    for i, (p, g) in enumerate(zip(pred, gold)):
        reason = compare_values(p, g, spec.item, lenient, f"{where}[{i}]")
        if reason:
            return reason
    return None


def _compare_dict(pred: Any, gold: Any, spec: TypeSpec, lenient: bool, where: str) -> str | None:
    if not isinstance(pred, dict) or not isinstance(gold, dict):
        return f"{where} = {clip(repr(pred))}, expected {spec.text} {clip(repr(gold))}"
    if pred.keys() != gold.keys():
        return f"{where} has keys {sorted(pred, key=repr)}, expected {sorted(gold, key=repr)}"
    for key in gold:
        reason = compare_values(pred[key], gold[key], spec.item, lenient, f"{where}[{key!r}]")
        if reason:
            return reason
    return None


def compare_values(pred: Any, gold: Any, spec: TypeSpec | None, lenient: bool, where: str) -> str | None:
    """None when ``pred`` equals ``gold`` under the declared type, else a reason that starts with ``where``."""
    if identical(pred, gold):  # also covers gold values that break their own declared type (xlam has some)
        return None
    if spec is not None and spec.kind in SCALAR_KINDS.values() and not _fits(gold, spec.kind):
        gold = as_declared(gold, spec)  # xlam's type quirk: the declared type's form of the gold value
        if identical(pred, gold):
            return None
    if spec is None:
        return None if pred == gold else f"{where} = {clip(repr(pred))}, expected {clip(repr(gold))}"
    if spec.kind == "list":
        return _compare_list(pred, gold, spec, lenient, where)
    if spec.kind == "dict":
        return _compare_dict(pred, gold, spec, lenient, where)
    if _scalar_matches(pred, gold, spec.kind, lenient):
        return None
    return f"{where} = {clip(repr(pred))}, expected {spec.text} {clip(repr(gold))}"


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


def is_default(value: Any, param: dict, spec: TypeSpec | None, lenient: bool) -> bool:
    """``value`` equals the declared default, as written ("10") or in its declared type (10)."""
    written = param.get("default", NO_DEFAULT)
    if written is NO_DEFAULT:
        return False
    return identical(value, written) or compare_values(value, declared_default(param, spec), spec, lenient, "") is None
