"""Load xlam-format rows (the hub dataset or local json/jsonl/parquet), validate each row, split by id.

A row is ``{"id", "query", "tools", "answers"}`` with tools and answers as JSON strings. A gold row for
``fcdist score`` may add ``acceptable`` (a JSON list aligned with answers: per call, ``{"values": {arg:
[every acceptable value]}, "may_omit": [arg, ...]}``) and ``category`` (the report's category name);
rendering, training and inference never read them. Validation names
the source and the row id in every message, and the ``on_bad_row`` policy decides whether a bad row stops
the job (``error``) or is skipped and counted (``skip``); it is never silent.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from fcdist.errors import InputError

REQUIRED_COLUMNS = ("id", "query", "tools", "answers")
LOCAL_FORMATS = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}


class BadRowError(InputError):
    """A row that cannot be used, with where it came from and why."""

    def __init__(self, source: str, row_id: Any, reason: str):
        self.source, self.row_id, self.reason = source, row_id, reason
        super().__init__(f"{source}: row id={row_id!r}: {reason}")


@dataclass(frozen=True)
class Alternatives:
    """What else a gold call accepts (the gold row's ``acceptable`` for one call)."""

    values: dict[str, list] = field(default_factory=dict)  # argument -> every acceptable value (the answer's too)
    may_omit: frozenset[str] = frozenset()  # arguments the prediction may leave out


@dataclass(frozen=True)
class XlamRow:
    id: Any
    query: str
    tools: list[dict]
    answers: list[dict]
    acceptable: list[Alternatives] | None = None  # one per answer; None: each argument accepts its answer value only
    category: str | None = None  # the report's category; None: derived from answers and tools


@dataclass
class SkipReport:
    """What ``on_bad_row: skip`` left out, by reason (reason text without the row id)."""

    skipped: int = 0
    reasons: Counter = field(default_factory=Counter)
    examples: dict[str, Any] = field(default_factory=dict)  # reason -> first row id seen with it

    def add(self, error: BadRowError) -> None:
        self.skipped += 1
        self.reasons[error.reason] += 1
        self.examples.setdefault(error.reason, error.row_id)

    def apply(self, error: BadRowError, on_bad_row: str) -> None:
        """The ``on_bad_row`` policy for one bad row: ``error`` raises it, ``skip`` counts it here."""
        if on_bad_row == "error":
            raise error
        self.add(error)

    def merge(self, other: "SkipReport") -> None:
        self.skipped += other.skipped
        self.reasons.update(other.reasons)
        for reason, row_id in other.examples.items():
            self.examples.setdefault(reason, row_id)

    def summary(self) -> str:
        lines = [f"skipped {self.skipped} bad row(s):"]
        lines += [f"  {n} x {reason} (first: id={self.examples[reason]!r})" for reason, n in self.reasons.most_common()]
        return "\n".join(lines)


def _decode_list(raw: Any, column: str, source: str, row_id: Any) -> list:
    if isinstance(raw, list):  # already decoded (a parquet file may store lists)
        return raw
    if not isinstance(raw, str):
        raise BadRowError(source, row_id, f"'{column}' must be a JSON string, got {type(raw).__name__}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise BadRowError(source, row_id, f"'{column}' is not valid JSON ({e.msg} at char {e.pos})") from None
    if not isinstance(value, list):
        raise BadRowError(source, row_id, f"'{column}' must decode to a list, got {type(value).__name__}")
    return value


def _check_tools(tools: list, source: str, row_id: Any) -> None:
    first_index: dict[str, int] = {}  # calls find their tool by name, so a repeated name is ambiguous
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise BadRowError(source, row_id, f"'tools'[{i}] must be a dict with a string 'name'")
        if tool["name"] in first_index:
            raise BadRowError(source, row_id, f"'tools'[{i}] repeats the tool name '{tool['name']}' of 'tools'[{first_index[tool['name']]}]")
        first_index[tool["name"]] = i
        params = tool.get("parameters", {})
        if not isinstance(params, dict):
            raise BadRowError(source, row_id, f"'tools'[{i}] ({tool['name']}) 'parameters' must be a dict")


def _check_answers(answers: list, tool_names: set[str], source: str, row_id: Any) -> None:
    for i, call in enumerate(answers):
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise BadRowError(source, row_id, f"'answers'[{i}] must be a dict with a string 'name'")
        if not isinstance(call.get("arguments"), dict):
            raise BadRowError(source, row_id, f"'answers'[{i}] ({call['name']}) 'arguments' must be a dict")
        if call["name"] not in tool_names:
            raise BadRowError(source, row_id, f"'answers'[{i}] calls '{call['name']}', which is not among the row's tools")


BFCL_CALL_COUNTS = {"simple": "exactly one", "multiple": "exactly one", "irrelevance": "no"}
ACCEPTABLE_KEYS = {"values", "may_omit"}


def _check_category(category: Any, answers: list, source: str, row_id: Any) -> None:
    if not isinstance(category, str) or not category:
        raise BadRowError(source, row_id, f"'category' must be a non-empty string, got {category!r}")
    wanted = BFCL_CALL_COUNTS.get(category, "at least one" if category.startswith("parallel") else None)
    count_fits = {"exactly one": len(answers) == 1, "no": not answers, "at least one": bool(answers), None: True}
    if not count_fits[wanted]:
        raise BadRowError(source, row_id, f"'category' {category!r} needs {wanted} call(s) in 'answers', which holds {len(answers)}")


def _call_alternatives(entry: Any, call: dict, params: dict, where: str) -> Alternatives:
    """One element of ``acceptable``; raises ValueError saying what is wrong with it."""
    if not isinstance(entry, dict) or not set(entry) <= ACCEPTABLE_KEYS:
        raise ValueError(f"{where} must be a dict with only 'values' and 'may_omit'")
    values, may_omit = entry.get("values", {}), entry.get("may_omit", [])
    if not isinstance(values, dict) or not all(isinstance(v, list) and v for v in values.values()):
        raise ValueError(f"{where}['values'] must map each argument to a non-empty list of values")
    if not isinstance(may_omit, list) or not all(isinstance(a, str) for a in may_omit):
        raise ValueError(f"{where}['may_omit'] must be a list of argument names")
    for arg in values:
        if arg not in call["arguments"]:
            raise ValueError(f"{where} lists values for {arg!r}, which the answer does not give")
    for arg in [*values, *may_omit]:
        if arg not in params:
            raise ValueError(f"{where} names {arg!r}, which is not a parameter of {call['name']}")
    return Alternatives(values, frozenset(may_omit))


def _parse_acceptable(raw: Any, answers: list, tools: list, source: str, row_id: Any) -> list[Alternatives]:
    entries = _decode_list(raw, "acceptable", source, row_id)
    if len(entries) != len(answers):
        raise BadRowError(source, row_id, f"'acceptable' has {len(entries)} element(s), 'answers' {len(answers)}: one per call")
    params = {tool["name"]: tool.get("parameters") or {} for tool in tools}
    try:
        return [_call_alternatives(entry, call, params[call["name"]], f"'acceptable'[{i}]")
                for i, (entry, call) in enumerate(zip(entries, answers))]
    except ValueError as e:
        raise BadRowError(source, row_id, str(e)) from None


def max_row_chars(max_length: int) -> int:
    """Characters a row may hold before it is decoded and tokenized. A token averages about 4 characters, so
    a longer row is many times over ``max_length`` tokens (its calls, at the end, would be cut off anyway),
    while tokenizing it in full costs memory and minutes (60 MB: 13 GB, 4 minutes)."""
    return max(32 * max_length, 65536)


def _check_size(raw: dict, source: str, row_id: Any, max_chars: int | None) -> None:
    size = sum(len(raw[c]) for c in ("query", "tools", "answers") if isinstance(raw[c], str))
    if max_chars is not None and size > max_chars:
        raise BadRowError(source, row_id, f"query + tools + answers are longer than {max_chars} characters, the limit "
                                          "for data.max_length (max(32 x max_length, 65536)); not tokenized")


def parse_row(raw: dict, source: str, max_chars: int | None = None) -> XlamRow:
    """Decode and validate one raw row; raises BadRowError naming the row id and the reason.
    ``max_chars`` refuses a longer row before decoding it (``max_row_chars``)."""
    row_id = raw.get("id")
    missing = [c for c in REQUIRED_COLUMNS if raw.get(c) is None]
    if missing:
        raise BadRowError(source, row_id, f"missing column(s) {', '.join(missing)}")
    _check_size(raw, source, row_id, max_chars)
    if not isinstance(raw["query"], str):
        raise BadRowError(source, row_id, "'query' must be a string")
    tools = _decode_list(raw["tools"], "tools", source, row_id)
    answers = _decode_list(raw["answers"], "answers", source, row_id)
    _check_tools(tools, source, row_id)
    _check_answers(answers, {t["name"] for t in tools}, source, row_id)
    acceptable = None if raw.get("acceptable") is None else _parse_acceptable(raw["acceptable"], answers, tools, source, row_id)
    if raw.get("category") is not None:
        _check_category(raw["category"], answers, source, row_id)
    return XlamRow(row_id, raw["query"], tools, answers, acceptable, raw.get("category"))


def parse_rows(raws: Iterable[dict], source: str, on_bad_row: str, max_chars: int | None = None
               ) -> tuple[list[XlamRow], SkipReport]:
    """Validate many rows under the ``on_bad_row`` policy (``error`` raises at the first bad row)."""
    rows, report = [], SkipReport()
    for raw in raws:
        try:
            rows.append(parse_row(raw, source, max_chars))
        except BadRowError as e:
            report.apply(e, on_bad_row)
    return rows, report


def heldout_score(row_id: Any) -> float:
    """A number in [0, 1) fixed by the row id alone, so every shard, node and rerun agrees on the split."""
    digest = hashlib.sha256(str(row_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_heldout(row_id: Any, fraction: float) -> bool:
    return heldout_score(row_id) < fraction


def load_raw(source: str, revision: str | None = None, split: str = "train"):
    """The raw rows as a ``datasets.Dataset``: a local json/jsonl/parquet file, or a hub dataset id.

    The hub dataset (``Salesforce/xlam-function-calling-60k``) is gated: the token comes from the
    environment (``HF_TOKEN``), never from a config file, and is never logged.
    """
    import datasets

    path = Path(source)
    if path.suffix in LOCAL_FORMATS or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"data.source: no such file: {source}")
        fmt = LOCAL_FORMATS.get(path.suffix)
        if fmt is None:
            raise ValueError(f"data.source: {source}: unknown format (expected one of {', '.join(LOCAL_FORMATS)})")
        ds = load_local(path, fmt)
    else:
        ds = datasets.load_dataset(source, revision=revision, split=split, token=os.environ.get("HF_TOKEN"))
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise BadRowError(source, None, f"missing column(s) {', '.join(missing)} (the file has {ds.column_names})")
    return ds


TEXT_PROBE_BYTES = 1 << 20  # how much of a json/jsonl file is checked for being text before datasets reads it


def check_local_file(path: Path, fmt: str) -> None:
    """Refuse an empty file, a binary file given as json, or a file that is not parquet, naming it: datasets
    would fail with a bare StopIteration or UnicodeDecodeError."""
    with open(path, "rb") as f:
        head = f.read(TEXT_PROBE_BYTES)
        f.seek(max(path.stat().st_size - 4, 0))
        tail = f.read()
    if not head.strip():
        raise InputError(f"{path}: the file is empty (expected xlam rows as {fmt})")
    if fmt == "parquet":
        if not (head.startswith(b"PAR1") and tail == b"PAR1"):
            raise InputError(f"{path}: not a parquet file (no PAR1 magic bytes)")
        return
    try:  # incremental: the probe may end inside a character
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < TEXT_PROBE_BYTES)
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not a UTF-8 text file (byte {e.start} is not UTF-8); expected JSON rows") from None
    if b"\0" in head:
        raise InputError(f"{path}: not a text file (it holds NUL bytes); expected JSON rows")


def load_local(path: Path, fmt: str):
    """A local file as a Dataset; whatever datasets cannot read is an InputError naming the file and the reason."""
    import datasets

    check_local_file(path, fmt)
    try:
        ds = datasets.load_dataset(fmt, data_files=str(path), split="train")
    except Exception as e:  # noqa: BLE001 - any reading failure is about this file; its root cause says why
        while e.__cause__ is not None:  # datasets wraps the reader's error (e.g. pyarrow's) in its own
            e = e.__cause__
        raise InputError(f"{path}: cannot be read as {fmt}: {e}") from None
    if len(ds) == 0:
        raise InputError(f"{path}: holds no rows")
    return ds


def read_rows(source: str, on_bad_row: str = "error", max_chars: int | None = None) -> tuple[list[XlamRow], SkipReport]:
    """Load and validate every row of a local file or hub dataset (small files: gold sets, tests, render)."""
    return parse_rows(load_raw(source), source, on_bad_row, max_chars)
