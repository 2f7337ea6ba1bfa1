"""Rule 1 of scoring: reading the calls out of a completion.

The calls are the lines after the last ``<calls>`` (or from the start) up to the first ``</calls>`` (or the
end). Each non-empty line is a call dict (JSON or a Python literal, as the seed prints them) or a list of call
dicts; a call is exactly ``{"name": str, "arguments": dict}``.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from fcdist.data.render import CALLS_CLOSE, CALLS_OPEN

CALL_KEYS = {"name", "arguments"}


class CallParseError(ValueError):
    """A completion whose calls cannot be read; the message names the line and why."""


def clip(text: str, limit: int = 80) -> str:
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
        raise ValueError(f"neither JSON nor a Python literal: {clip(text)}") from None


def calls_block(completion: str) -> str:
    """The text after the last ``<calls>`` (or from the start) up to the first ``</calls>`` (or the end)."""
    start = completion.rfind(CALLS_OPEN)
    body = completion[start + len(CALLS_OPEN) :] if start >= 0 else completion
    return body.split(CALLS_CLOSE, 1)[0]


def _check_call(value: Any, line_number: int) -> dict:
    if not isinstance(value, dict) or set(value) != CALL_KEYS:
        raise CallParseError(
            f"calls line {line_number}: a call must be a dict with exactly 'name' and 'arguments', "
            f"got {clip(repr(value))}"
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
