"""Synthetic function-calling rows in the exact xlam-function-calling-60k schema.

    fcdist synth --out data/synth.jsonl --rows 60000 --seed 0

Each row is ``{"id": int, "query": str, "answers": JSON str, "tools": JSON str}``, like the gated hub
dataset, so every stage after this one runs unchanged on either. Rows are built from a catalogue of a few
hundred API functions (domain x verb x object x lookup key, plus stand-alone utilities) with typed,
described parameters. A row offers 1-8 tools and asks for one of four call shapes: simple, multiple
(one call among several tools), parallel (one function called several times) and parallel-multiple.

Like the real data, about half the argument values are not spelled out in the query but follow from it
through fixed mappings a model can learn from the training rows (``synth_mentions``: "for Apple" ->
"AAPL", "a dozen" -> 12, "in Fahrenheit" -> "imperial", "next Friday" -> an ISO date given the date the
query states as today, a city -> its coordinates). Tool docs carry xlam's quirks: most defaults written
as strings ("10", "false"), many "" defaults, example defaults on required parameters, and a few
parameters whose declared type differs from the values the calls give (a numeric ID declared "str").

The catalogue's data (value pools, parameter kinds, domains, utilities, doc sentences, query templates) is
``synth_catalogue.yaml``, read by ``synth_catalogue``; this module holds the logic. The catalogue is the same
for every seed (train and eval files made with different seeds share one API set, as splits of the real
dataset do); the seed picks the rows. Same seed, byte-identical output.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fcdist.atomic import atomic_path
from fcdist.data.synth_catalogue import Domain, Kind, catalogue
from fcdist.data.synth_mentions import CITY_COORDINATES, COORDINATE_PAIRS, MENTIONS, Mention, RowContext

CATALOGUE_SEED = 20240611  # fixes descriptions and defaults of the function catalogue, not the rows
SHAPE_WEIGHTS = {"simple": 0.3, "multiple": 0.18, "parallel": 0.22, "parallel_multiple": 0.3}
PARALLEL_CALLS = {2: 6, 3: 3, 4: 1}  # calls per parallel row -> weight: two calls are the most common, as in xlam
TOOL_COUNT_WEIGHTS = (12, 8, 4, 2, 1, 1, 1, 1)  # for 1..8 tools; sliced from the low end for rows needing several
MAX_TOOLS = len(TOOL_COUNT_WEIGHTS)
OPTIONAL_SHARE = 0.65  # chance that a call states a given optional parameter
MENTION_SHARE = 0.8  # chance that a value with a mapping is implied ("for Apple") rather than spelled ("for AAPL")
CITY_SHARE = 0.6  # chance that a pair of coordinates is given as a city name
# Tool-doc quirks of xlam (measured on real rows, see bench/synth_stats.py):
REQUIRED_DEFAULT_SHARE = 0.85  # required parameters showing an example default
EMPTY_DEFAULT_SHARE = 0.33  # optional parameters whose default is ""
TYPED_DEFAULT_SHARE = 0.15  # defaults kept as typed values; the rest are strings ("10", "false")
TYPE_QUIRKS = {"int": "str", "float": "int"}  # declared type -> the wrong one some functions declare instead
TYPE_QUIRK_SHARE = 0.22  # chance that an int or float parameter of a function is declared with its quirk type
NO_DEFAULT = object()
PROGRESS_MIN_ROWS = 5000  # below this a progress bar is noise
OUTPUT_FORMATS = (".jsonl", ".json", ".parquet")


# ---------------------------------------------------------------- the function catalogue


@dataclass(frozen=True)
class Param:
    role: str  # the key under kinds in the catalogue (several roles share an xlam name)
    required: bool

    @property
    def kind(self) -> Kind:
        return catalogue().kinds[self.role]

    @property
    def mention(self) -> Mention | None:
        return MENTIONS.get(self.role)


@dataclass(frozen=True)
class Function:
    """One API in the catalogue: its xlam tool dict and how queries ask for it."""

    name: str
    domain: str
    tool: dict
    params: tuple[Param, ...]
    actions: tuple[str, ...]  # infinitive phrases: "get the weather forecast"
    noun: str  # what it returns, for "Show me {noun} ..." phrasings

    @functools.cached_property
    def tool_json(self) -> str:
        """The tool dict as JSON, encoded once: rows join these (json.dumps of the list gives the same text)."""
        return json.dumps(self.tool)


def _function_doc(verb: str, noun: str, described_as: str, api: str, rng: random.Random) -> str:
    lookup = f" for a given {described_as}" if verb in ("get", "fetch", "list") else f" by {described_as}"
    source = rng.choice((f" using the {api} API", f" from the {api} API", f" via {api}", ""))
    return f"{catalogue().verbs[verb].doc} {noun}{lookup}{source}."


def _verbosity(rng: random.Random) -> int:
    """Extra doc sentences for one function: mostly 0-2, with a long tail like real API docs."""
    return min(int(rng.lognormvariate(-1.0, 1.0)), len(catalogue().doc_sentences))


def _param_doc(k: Kind, required: bool, verbose: bool, rng: random.Random) -> dict[str, Any]:
    text = rng.choice(k.descriptions)
    if verbose and k.type_name == "str" and rng.random() < 0.5:
        text += " (e.g., " + ", ".join(f"'{k.sample(rng)}'" for _ in range(2)) + ")."
    if verbose and rng.random() < 0.4:
        text += " " + rng.choice(catalogue().param_sentences)
    default = _doc_default(k, required, rng)
    if not required and rng.random() < 0.3:
        text += f" Defaults to {default}." if default not in ("", None) else " Optional."
    doc: dict[str, Any] = {"description": text, "type": _declared_type(k, rng) + ("" if required else ", optional")}
    if default is not NO_DEFAULT:
        doc["default"] = default
    return doc


def _declared_type(k: Kind, rng: random.Random) -> str:
    """The kind's type, or now and then xlam's quirk: a numeric ID declared "str", coordinates declared "int"."""
    quirk = TYPE_QUIRKS.get(k.type_name)
    return quirk if quirk and rng.random() < TYPE_QUIRK_SHARE else k.type_name


def _doc_default(k: Kind, required: bool, rng: random.Random) -> Any:
    """What a tool doc shows as default: optional ones always (often ""), required ones an example value."""
    if not required:
        return "" if rng.random() < EMPTY_DEFAULT_SHARE else _as_written(k.default, rng)
    if k.type_name.startswith(("List", "Dict")) or rng.random() > REQUIRED_DEFAULT_SHARE:
        return NO_DEFAULT
    return "" if rng.random() < 0.1 else _as_written(k.sample(rng), rng)


def _as_written(value: Any, rng: random.Random) -> Any:
    """Real xlam writes most defaults as strings ("10", "false"); a few keep their type."""
    if value is None or isinstance(value, str) or rng.random() < TYPED_DEFAULT_SHARE:
        return value
    return str(value).lower() if isinstance(value, bool) else str(value)


def _make_function(name: str, domain: str, doc: str, params: tuple[Param, ...], actions: tuple[str, ...], noun: str,
                   rng: random.Random) -> Function:
    extra = _verbosity(rng)
    description = " ".join([doc, *rng.sample(catalogue().doc_sentences, extra)])
    verbose = extra >= 2
    parameters = {p.kind.name: _param_doc(p.kind, p.required, verbose, rng) for p in params}
    tool = {"name": name, "description": description, "parameters": parameters}
    return Function(name, domain, tool, params, actions, noun)


def _domain_functions(domain: Domain, rng: random.Random) -> list[Function]:
    functions = []
    for verb in domain.verbs:
        for obj in domain.objects:
            for lookup in domain.lookups:
                name = "_".join(part for part in (verb, obj.snake, lookup.suffix) if part)
                required = (*lookup.required, *obj.required)
                kept_optional = [k for k in obj.optional if rng.random() < 0.6][: 5 - len(required)]
                params = tuple(Param(k, True) for k in required) + tuple(Param(k, False) for k in kept_optional)
                actions = tuple(f"{a} {obj.noun}" for a in catalogue().verbs[verb].actions)
                doc = _function_doc(verb, obj.noun, lookup.described_as, rng.choice(domain.apis), rng)
                functions.append(_make_function(name, domain.name, doc, params, actions, obj.noun, rng))
    return functions


def _utility_functions(rng: random.Random) -> list[Function]:
    functions = []
    for u in catalogue().utilities:
        params = tuple(Param(k, True) for k in u.required) + tuple(Param(k, False) for k in u.optional)
        functions.append(_make_function(u.name, "utility", u.doc, params, u.actions, u.noun, rng))
    return functions


@functools.lru_cache(maxsize=1)
def function_catalogue() -> tuple[Function, ...]:
    """All functions rows draw from, the same for every seed (names are unique; a test checks)."""
    rng = random.Random(CATALOGUE_SEED)
    return tuple(f for d in catalogue().domains for f in _domain_functions(d, rng)) + tuple(_utility_functions(rng))


@functools.lru_cache(maxsize=1)
def _by_domain() -> dict[str, tuple[Function, ...]]:
    groups: dict[str, list[Function]] = {}
    for f in function_catalogue():
        groups.setdefault(f.domain, []).append(f)
    return {d: tuple(fs) for d, fs in groups.items()}


@dataclass(frozen=True)
class Call:
    function: Function
    arguments: dict[str, Any]
    spoken: dict[str, str] = field(default_factory=dict)  # argument -> phrase implying its value; "" if another says it


def value_text(value: Any, rng: random.Random) -> str:
    """How a query spells a value: lists and dicts in prose or Python-literal form, scalars as str()."""
    if isinstance(value, list):
        return str(value) if rng.random() < 0.4 else join_words([repr(v) if isinstance(v, str) else str(v) for v in value])
    if isinstance(value, dict):
        return join_words([f"{k}={v!r}" for k, v in value.items()])
    return str(value)


def join_words(items: Sequence[str], last: str = " and ") -> str:
    return ", ".join(items[:-1]) + last + items[-1] if len(items) > 1 else "".join(items)


def phrase(k: Kind, value: Any, rng: random.Random) -> str:
    return rng.choice(k.phrases).format(v=value_text(value, rng))


def sample_call(function: Function, rng: random.Random, ctx: RowContext) -> Call:
    """Arguments for every required parameter; each optional one is stated in the query OPTIONAL_SHARE of the time."""
    params = [p for p in function.params if p.required or rng.random() < OPTIONAL_SHARE]
    arguments, spoken = sample_arguments(params, rng, ctx)
    return Call(function, arguments, spoken)


def sample_arguments(params: Sequence[Param], rng: random.Random, ctx: RowContext) -> tuple[dict, dict[str, str]]:
    """Values for ``params``, and the phrases for those the query implies instead of spelling out."""
    arguments: dict[str, Any] = {}
    spoken: dict[str, str] = {}
    for p in params:
        mentioned = _mentioned_value(p, arguments, rng, ctx) if p.mention and rng.random() < MENTION_SHARE else None
        if mentioned:
            arguments[p.kind.name], spoken[p.kind.name] = mentioned
        else:
            arguments[p.kind.name] = fresh_value(p, arguments, rng)
    _city_for_coordinates(params, arguments, spoken, rng)
    return arguments, spoken


def _mentioned_value(param: Param, taken: dict[str, Any], rng: random.Random, ctx: RowContext) -> tuple[Any, str] | None:
    """A mapped value and its phrase, or None when it would repeat a value or state an optional default."""
    value, text = param.mention(rng, ctx)
    repeats = isinstance(value, str) and value in taken.values()
    return None if repeats or (not param.required and value == param.kind.default) else (value, text)


def _city_for_coordinates(params: Sequence[Param], arguments: dict, spoken: dict[str, str], rng: random.Random) -> None:
    """A latitude/longitude pair given as a city name whose coordinates the catalogue fixes."""
    roles = {p.role for p in params}
    for lat, lon, phrases in COORDINATE_PAIRS:
        if {lat, lon} <= roles and rng.random() < CITY_SHARE:
            city = rng.choice(sorted(CITY_COORDINATES))
            lat_name, lon_name = catalogue().kinds[lat].name, catalogue().kinds[lon].name
            arguments[lat_name], arguments[lon_name] = CITY_COORDINATES[city]
            spoken[lat_name], spoken[lon_name] = rng.choice(phrases.split("|")).format(n=city), ""


def fresh_value(param: Param, taken: dict[str, Any], rng: random.Random) -> Any:
    """A value that reads sensibly: no "from EUR to EUR", and an optional one is only stated if not the default."""
    while True:
        value = param.kind.sample(rng)
        repeats = isinstance(value, str) and value in taken.values()
        if not repeats and (param.required or value != param.kind.default):
            return value


def argument_phrase(call: Call, param: Param, rng: random.Random) -> str:
    name = param.kind.name
    return call.spoken[name] if name in call.spoken else phrase(param.kind, call.arguments[name], rng)


def argument_phrases(call: Call, rng: random.Random, required: bool | None = None) -> list[str]:
    """Query fragments for the call's arguments: required in declared order, optional ones shuffled after."""
    params = [p for p in call.function.params if p.kind.name in call.arguments and required in (None, p.required)]
    fixed = [argument_phrase(call, p, rng) for p in params if p.required]
    free = [argument_phrase(call, p, rng) for p in params if not p.required]
    rng.shuffle(free)
    return [text for text in fixed + free if text]


def join_phrases(parts: list[str], rng: random.Random) -> str:
    return " ".join(parts) if rng.random() < 0.5 else join_words(parts)


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def fill(template: str, **slots: str) -> str:
    """str.format with a capitalized variant of every slot ({Action} next to {action})."""
    slots.update({capitalize(k): capitalize(v) for k, v in list(slots.items())})
    return template.format(**slots)


def single_query(call: Call, rng: random.Random) -> str:
    args = join_phrases(argument_phrases(call, rng), rng) if call.arguments else "for me"
    template = rng.choice(catalogue().templates["noun" if call.function.domain != "utility" and rng.random() < 0.3 else "single"])
    return fill(template, action=rng.choice(call.function.actions), noun=call.function.noun, args=args)


def parallel_query(calls: list[Call], rng: random.Random) -> str:
    """Same function, required arguments varying per call, optional ones shared by all calls."""
    groups = [" ".join(argument_phrases(c, rng, required=True)) for c in calls]  # no inner "and": groups stay apart
    shared = argument_phrases(calls[0], rng, required=False)
    function = calls[0].function
    return fill(rng.choice(catalogue().templates["parallel"]), action=rng.choice(function.actions), noun=function.noun,
                groups=join_words(groups, ", and "), first=groups[0], rest=join_words(groups[1:], ", and "),
                shared=(" " + join_phrases(shared, rng)) if shared else "")


def multi_call_query(calls: list[Call], rng: random.Random) -> str:
    clauses = [f"{rng.choice(c.function.actions)} {join_phrases(argument_phrases(c, rng), rng)}".rstrip() for c in calls]
    sequence = ". ".join([clauses[0]] + [capitalize(rng.choice(("then ", "after that, ", "also ", "")) + c) for c in clauses[1:]])
    return fill(rng.choice(catalogue().templates["multi_call"]), clauses=join_words(clauses, ", and "), sequence=sequence,
                semicolons="; ".join(clauses))


def parallel_calls(function: Function, count: int, rng: random.Random, ctx: RowContext) -> list[Call]:
    """Calls of one function whose required arguments differ, so each call is recoverable from the query."""
    first = sample_call(function, rng, ctx)
    calls, seen = [first], {_required_key(first)}
    for _ in range(count * 4):
        if len(calls) == count:
            break
        values, spoken = sample_arguments([p for p in function.params if p.required], rng, ctx)
        shared = {name: text for name, text in first.spoken.items() if name not in values}
        call = Call(function, {**first.arguments, **values}, {**shared, **spoken})
        if _required_key(call) not in seen:
            seen.add(_required_key(call))
            calls.append(call)
    return calls


def _required_key(call: Call) -> str:
    return repr([call.arguments[p.kind.name] for p in call.function.params if p.required])


@functools.lru_cache(maxsize=1)
def _parallel_capable() -> tuple[Function, ...]:
    """Functions with a required parameter: only those can be called several times with different arguments."""
    return tuple(f for f in function_catalogue() if any(p.required for p in f.params))


# ---------------------------------------------------------------- rows


def pick_functions(count: int, rng: random.Random, first: Function | None = None) -> list[Function]:
    """Distinct functions; distractors come from the first one's domain half the time (harder to tell apart)."""
    catalogue = function_catalogue()
    chosen = [first or rng.choice(catalogue)]
    while len(chosen) < count:
        neighbours = _by_domain()[chosen[0].domain]
        candidate = rng.choice(neighbours if rng.random() < 0.5 else catalogue)
        if candidate not in chosen:
            chosen.append(candidate)
    return chosen


def tool_count(rng: random.Random, low: int) -> int:
    """Skewed toward few tools, as in xlam; many tools make the long rows."""
    return rng.choices(range(low, MAX_TOOLS + 1), weights=TOOL_COUNT_WEIGHTS[low - 1 :])[0]


def build_row_calls(shape: str, rng: random.Random, ctx: RowContext) -> tuple[list[Function], list[Call], str]:
    if shape == "simple":
        function = rng.choice(function_catalogue())
        call = sample_call(function, rng, ctx)
        return [function], [call], single_query(call, rng)
    if shape == "multiple":
        tools = pick_functions(tool_count(rng, 2), rng)
        call = sample_call(tools[0], rng, ctx)
        return tools, [call], single_query(call, rng)
    if shape == "parallel":
        function = rng.choice(_parallel_capable())
        tools = pick_functions(tool_count(rng, 1), rng, function)
        count = rng.choices(list(PARALLEL_CALLS), weights=list(PARALLEL_CALLS.values()))[0]
        calls = parallel_calls(function, count, rng, ctx)
        return tools, calls, parallel_query(calls, rng)
    tools = pick_functions(tool_count(rng, 2), rng)
    used = rng.sample(tools, 3 if len(tools) > 2 and rng.random() < 0.25 else 2)
    calls = [sample_call(f, rng, ctx) for f in used + (rng.sample(used, 1) if rng.random() < 0.2 else [])]
    return tools, calls, multi_call_query(calls, rng)


def with_today(query: str, ctx: RowContext, rng: random.Random) -> str:
    """A query whose values depend on today's date says which date that is."""
    if not ctx.dated:
        return query
    return f"{ctx.today_sentence()} {query}" if rng.random() < 0.5 else f"{query} ({ctx.today_sentence()})"


def make_row(row_id: int, rng: random.Random) -> dict[str, Any]:
    shape = rng.choices(list(SHAPE_WEIGHTS), weights=list(SHAPE_WEIGHTS.values()))[0]
    ctx = RowContext.draw(rng)
    tools, calls, query = build_row_calls(shape, rng, ctx)
    query = with_today(query, ctx, rng)
    rng.shuffle(tools)
    answers = [{"name": c.function.name, "arguments": c.arguments} for c in calls]
    return {"id": row_id, "query": query, "answers": json.dumps(answers), "tools": "[" + ", ".join(f.tool_json for f in tools) + "]"}


def generate_rows(num_rows: int, seed: int) -> list[dict]:
    """``num_rows`` xlam-schema rows with ids 0..num_rows-1; the same seed gives the same rows."""
    rng = random.Random(seed)
    ids = tqdm(range(num_rows), desc="synth", unit="row", disable=num_rows < PROGRESS_MIN_ROWS, file=sys.stderr)
    return [make_row(i, rng) for i in ids]


# ---------------------------------------------------------------- output


def write_rows(rows: list[dict], out: Path) -> None:
    """Write by extension (.jsonl, .json, .parquet) to a temp file beside ``out``, then rename over it."""
    if out.suffix not in OUTPUT_FORMATS:
        raise ValueError(f"--out {out}: unknown format {out.suffix!r} (use one of {', '.join(OUTPUT_FORMATS)})")
    with atomic_path(out) as tmp:
        if out.suffix == ".parquet":
            import datasets  # heavy; only this format needs it

            datasets.Dataset.from_list(rows).to_parquet(str(tmp))
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                if out.suffix == ".jsonl":
                    f.writelines(json.dumps(row) + "\n" for row in rows)
                else:
                    json.dump(rows, f)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist synth",
        usage="fcdist synth --out FILE [--rows N] [--seed S]",
        description="Write synthetic rows in the xlam-function-calling-60k schema (id, query, answers, tools).",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="output file: .jsonl, .json or .parquet")
    parser.add_argument("--rows", type=int, default=1000, metavar="N", help="number of rows (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed; the same seed gives the same file (default: 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    rows = generate_rows(args.rows, args.seed)
    write_rows(rows, args.out)
    print(f"wrote {len(rows)} rows to {args.out} (seed {args.seed}, {len(function_catalogue())} functions in the catalogue)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
