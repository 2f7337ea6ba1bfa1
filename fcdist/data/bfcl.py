"""Read a folder of Berkeley Function Calling Leaderboard (BFCL) files as fcdist gold rows.

    DIR/BFCL_v<N>_<category>.json                  questions: JSON lines {id, question, function}
    DIR/possible_answer/BFCL_v<N>_<category>.json  answers: JSON lines {id, ground_truth}

The Python AST categories are read: simple (``simple`` in v3, ``simple_python`` in v4), multiple, parallel,
parallel_multiple and irrelevance (which has no possible-answer file: the right answer is no call).

Each case becomes one xlam-format row, as training saw them, plus two fields that BFCL scoring reads:

- ``tools``: each function doc as an xlam tool. JSON-schema types become xlam's Python-style types
  (integer -> int, array of strings -> List[str], dict -> Dict[str, Any], tuple -> Tuple, any -> Any),
  ", optional" is added to the type of every argument the doc does not require, a declared default is kept,
  and an ``enum`` is written into the description ("Options are 'a', 'b'."), where xlam's own tools state
  their allowed values (xlam has no enum field, so a model trained on it has only ever read them there).
- ``query``: the user messages' text; a system message comes first as its own paragraph (the training
  template has no system slot, and dropping it could drop what the answer depends on).
- ``answers``: per ground-truth call the first acceptable value of each argument that is not ``""``
  (BFCL's "may be left out"); an argument whose only value is ``""`` is left out.
- ``acceptable``: a JSON string like tools and answers (the json reader would merge the dicts of all rows into
  one schema), aligned with answers, ``{"values": {arg: [every acceptable value but ""]}, "may_omit": [arg]}``.
  A dict argument's possible answer, ``{key: [acceptable values]}`` in BFCL's files, becomes every whole
  dict it accepts (also inside a list of dicts). An argument the function doc does not declare (BFCL's data
  has a few) stays in the answer unless ``""`` lets it be left out: only leaving it out can match.
- ``category``: the BFCL category of the file.

A malformed line, a function doc with an unknown type, a question without a possible answer: a BadRowError
naming the file, line and id, raised or counted as a skip under ``on_bad_row``, as for training data.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

from fcdist.data.xlam import BadRowError, SkipReport, parse_row
from fcdist.errors import InputError

CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance")
FILE_NAME = re.compile(r"BFCL_v(\d+)_(\w+)\.json")
CATEGORY_OF_STEM = {"simple_python": "simple", **{name: name for name in CATEGORIES}}  # v4 renamed simple
ANSWERS = "possible_answer"
NO_ANSWERS = {"irrelevance"}  # categories whose right answer is no call: BFCL ships no possible-answer file
OMITTED = ""  # BFCL's acceptable value meaning "the argument may be left out"
ABSENT = object()  # a dict key that one of its whole-dict alternatives leaves out
SCALAR_TYPES = {"integer": "int", "float": "float", "string": "str", "boolean": "bool", "any": "Any"}


@dataclass
class Conversion:
    """What a conversion read and wrote, per category: the denominator a report states."""

    read: Counter = field(default_factory=Counter)  # category -> cases (lines) read
    converted: Counter = field(default_factory=Counter)  # category -> gold rows written
    skips: SkipReport = field(default_factory=SkipReport)
    files: dict[str, str] = field(default_factory=dict)  # category -> question file read

    def summary(self) -> dict:
        return {"files": self.files, "by_category": {
            name: {"read": self.read[name], "converted": self.converted[name]} for name in self.files},
            "read": sum(self.read.values()), "converted": sum(self.converted.values()),
            "skipped": self.skips.skipped, "skip_reasons": dict(self.skips.reasons)}


# ---------------------------------------------------------------- the folder


def category_files(folder: Path, categories: list[str] | None = None) -> dict[str, Path]:
    """category -> its question file in ``folder``, for the wanted categories (default: every one present)."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of BFCL files")
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("BFCL_v*.json")):
        match = FILE_NAME.fullmatch(path.name)
        name = CATEGORY_OF_STEM.get(match[2]) if match else None
        if name is None:
            continue  # another BFCL category (live, multi-turn, java, ...): not a Python AST one
        if name in found:
            raise InputError(f"{folder}: two files for category {name}: {found[name].name} and {path.name}; keep one")
        found[name] = path
    wanted = categories or [name for name in CATEGORIES if name in found]
    unknown = [name for name in wanted if name not in CATEGORIES]
    if unknown:
        raise InputError(f"unknown BFCL categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} "
                         f"(known: {', '.join(CATEGORIES)})")
    missing = [name for name in wanted if name not in found]
    if missing or not wanted:
        raise InputError(f"{folder}: no BFCL question file for {', '.join(missing) or 'any category'} "
                         f"(expected names like BFCL_v4_simple_python.json, BFCL_v3_parallel.json)")
    return {name: found[name] for name in wanted}


def json_lines(path: Path) -> list[tuple[str, Any]]:
    """(where, value) per non-blank line, where = "file:line"; a line that is not JSON is (where, None)."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    lines.append((f"{path}:{number}", json.loads(line)))
                except ValueError:
                    lines.append((f"{path}:{number}", None))
    return lines


def possible_answers(path: Path, on_bad_row: str, skips: SkipReport) -> dict[str, list]:
    """id -> ground_truth of a possible-answer file."""
    if not path.is_file():
        raise InputError(f"{path}: no such possible-answer file (each question file has one of the same name)")
    answers = {}
    for where, record in json_lines(path):
        try:
            if not isinstance(record, dict) or "id" not in record:
                raise BadRowError(where, None, "not a JSON object with an 'id'")
            if not isinstance(record.get("ground_truth"), list):
                raise BadRowError(where, record["id"], "'ground_truth' must be a list of calls")
            answers[str(record["id"])] = record["ground_truth"]
        except BadRowError as e:
            skips.apply(e, on_bad_row)
    return answers


# ---------------------------------------------------------------- one case


def xlam_type(schema: Any, where: str, row_id: Any, arg: str) -> str:
    """A JSON-schema type of a BFCL doc as xlam writes it: integer -> int, array -> List[item], ..."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind in SCALAR_TYPES:
        return SCALAR_TYPES[kind]
    if kind == "dict":
        return "Dict[str, Any]"
    if kind in ("array", "tuple"):
        outer = "List" if kind == "array" else "Tuple"
        if "items" not in schema:
            return outer
        item = xlam_type(schema["items"], where, row_id, f"{arg} items")
        return f"{outer}[{item}]" if kind == "array" else f"Tuple[{item}, ...]"
    raise BadRowError(where, row_id, f"argument '{arg}' has the unknown type {kind!r} "
                                     f"(known: {', '.join([*SCALAR_TYPES, 'array', 'dict', 'tuple'])})")


def enum_sentence(values: list) -> str:
    return "Options are " + ", ".join(repr(v) for v in values) + "."


def xlam_tool(doc: Any, where: str, row_id: Any) -> dict:
    """One BFCL function doc as an xlam tool."""
    params = doc.get("parameters") if isinstance(doc, dict) else None
    if not isinstance(doc.get("name") if isinstance(doc, dict) else None, str) or not isinstance(params, dict):
        raise BadRowError(where, row_id, "a function doc needs a string 'name' and a 'parameters' object")
    properties, required = params.get("properties", {}), params.get("required", [])
    if not isinstance(properties, dict) or not isinstance(required, list):
        raise BadRowError(where, row_id, f"function {doc['name']}: 'properties' must be an object and 'required' a list")
    tool_params = {}
    for arg, schema in properties.items():
        kind = xlam_type(schema, where, row_id, f"{doc['name']}.{arg}")
        description = " ".join(part for part in (schema.get("description", ""),
                                                  enum_sentence(schema["enum"]) if schema.get("enum") else "") if part)
        param = {"description": description, "type": kind if arg in required else f"{kind}, optional"}
        if "default" in schema:
            param["default"] = schema["default"]
        tool_params[arg] = param
    return {"name": doc["name"], "description": doc.get("description", ""), "parameters": tool_params}


def query_text(question: Any, where: str, row_id: Any) -> str:
    """The system and user messages of every turn, one paragraph each, system messages first."""
    if not isinstance(question, list) or not all(isinstance(turn, list) for turn in question):
        raise BadRowError(where, row_id, "'question' must be a list of turns, each a list of messages")
    messages = [message for turn in question for message in turn]
    by_role: dict[str, list[str]] = {"system": [], "user": []}
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role not in by_role or not isinstance(message.get("content"), str):
            raise BadRowError(where, row_id, f"a message must be a system or user message with string 'content', got {message!r:.80}")
        by_role[role].append(message["content"])
    if not by_role["user"]:
        raise BadRowError(where, row_id, "'question' holds no user message")
    return "\n\n".join(by_role["system"] + by_role["user"])


def whole_dicts(answer: dict) -> list[dict]:
    """BFCL's answer for a dict argument, ``{key: [acceptable values]}``, as every whole dict it accepts
    (``""`` among a key's values: the key may be left out, or given as ``""``, which BFCL's checker accepts
    too). Real values come first, then leaving the key out, so the first dict is the answer to write."""
    keys, choices = list(answer), []
    for key in keys:
        listed = answer[key] if isinstance(answer[key], list) else [answer[key]]
        choices.append([value for value in listed if value != OMITTED] + [ABSENT, OMITTED] * (OMITTED in listed))
    return [{key: value for key, value in zip(keys, combo) if value is not ABSENT} for combo in product(*choices)]


def accepted_values(option: Any, schema: dict) -> list:
    """The concrete values one possible answer stands for: itself, or for a dict argument (or a list of
    dicts) every whole dict (list) its per-key alternatives make."""
    items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
    if schema.get("type") == "dict" and isinstance(option, dict):
        return whole_dicts(option)
    if schema.get("type") in ("array", "tuple") and items.get("type") == "dict" and isinstance(option, list):
        per_item = [whole_dicts(item) if isinstance(item, dict) else [item] for item in option]
        return [list(combo) for combo in product(*per_item)]
    return [option]


def gold_call(call: Any, properties: dict[str, dict], where: str, row_id: Any) -> tuple[dict, dict]:
    """(answer, acceptable) of one ground-truth call: the first acceptable value per argument, and all of them."""
    if not (isinstance(call, dict) and len(call) == 1 and isinstance(next(iter(call.values())), dict)):
        raise BadRowError(where, row_id, f"a ground-truth call must be {{function: {{argument: [values]}}}}, got {call!r:.80}")
    (name, arguments), = call.items()
    params = properties.get(name, {})
    chosen, values, may_omit = {}, {}, []
    for arg, options in arguments.items():
        if not isinstance(options, list) or not options:
            raise BadRowError(where, row_id, f"{name}: argument '{arg}' must list its acceptable values")
        accepted = [value for option in options if option != OMITTED
                    for value in accepted_values(option, params.get(arg) or {})]
        if arg not in params:  # not in the function doc (BFCL's data has a few): only leaving it out can match
            chosen.update({arg: accepted[0]} if OMITTED not in options else {})
            continue
        if accepted:
            chosen[arg], values[arg] = accepted[0], accepted
        if OMITTED in options:
            may_omit.append(arg)
    return {"name": name, "arguments": chosen}, {"values": values, "may_omit": may_omit}


def gold_row(record: Any, where: str, category: str, answers_by_id: dict[str, list] | None) -> dict:
    """One question line as a gold row (validated as training rows are)."""
    if not isinstance(record, dict) or "id" not in record:
        raise BadRowError(where, None, "not a JSON object with an 'id'")
    row_id = record["id"]
    if not isinstance(record.get("function"), list):
        raise BadRowError(where, row_id, "'function' must be a list of function docs")
    tools = [xlam_tool(doc, where, row_id) for doc in record["function"]]
    answers, acceptable = [], []
    if answers_by_id is not None:
        if str(row_id) not in answers_by_id:
            raise BadRowError(where, row_id, f"no possible answer with this id in {ANSWERS}/")
        properties = {doc["name"]: doc["parameters"].get("properties", {}) for doc in record["function"]}
        calls = [gold_call(call, properties, where, row_id) for call in answers_by_id[str(row_id)]]
        answers, acceptable = [answer for answer, _ in calls], [accept for _, accept in calls]
    row = {"id": row_id, "query": query_text(record.get("question"), where, row_id),
           "tools": json.dumps(tools, ensure_ascii=False), "answers": json.dumps(answers, ensure_ascii=False)}
    row.update(acceptable=json.dumps(acceptable, ensure_ascii=False), category=category)
    parse_row(row, where)  # the checks every gold row passes: e.g. an answer calls one of the row's tools
    return row


# ---------------------------------------------------------------- the whole folder


def read_folder(folder: str | Path, categories: list[str] | None = None, on_bad_row: str = "error"
                ) -> tuple[list[dict], Conversion]:
    """Gold rows of the wanted categories of a BFCL folder, and what was read, converted and skipped."""
    folder = Path(folder)
    conversion, rows, seen = Conversion(), [], {}
    for category, path in category_files(folder, categories).items():
        conversion.files[category] = str(path)
        answers = None if category in NO_ANSWERS else possible_answers(folder / ANSWERS / path.name, on_bad_row,
                                                                      conversion.skips)
        for where, record in json_lines(path):
            conversion.read[category] += 1
            try:
                row = gold_row(record, where, category, answers)
                if str(row["id"]) in seen:
                    raise BadRowError(where, row["id"], f"the id was read before, at {seen[str(row['id'])]}")
            except BadRowError as e:
                conversion.skips.apply(e, on_bad_row)
                continue
            seen[str(row["id"])] = where
            rows.append(row)
            conversion.converted[category] += 1
    return rows, conversion
