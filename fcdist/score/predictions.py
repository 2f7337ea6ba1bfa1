"""Reading the predictions file: one ``{"id", "completion"}`` JSON object per line."""

from __future__ import annotations

import json

from fcdist.errors import InputError


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
