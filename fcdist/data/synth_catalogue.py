"""The synthetic data's catalogue, read from ``synth_catalogue.yaml`` beside this file: value pools, parameter
kinds, API domains, stand-alone utilities, doc sentences and query templates. ``fcdist.data.synth`` holds the
logic that builds functions and rows from it.

A kind's ``sample`` is a sampler spec, a list naming a sampler and its arguments:

    [choice, cities]              a value of the pool "cities"; [choice, [true]] or [choice, [1, 2, 4]] inline
    [ints, 1, 14]                 an int in 1..14
    [floats, -45.0, 65.0, 4]      a float in the range, rounded to 4 decimals (2 if not given)
    [date]                        an ISO date in 2019-2025
    [code, "0123456789", 7, "tt"] 7 characters of the alphabet after an optional prefix ("tt0123456")
    [list_of, [ints, 1, 9], 3, 8] 3-8 values of the inner spec
    [distinct, words, 2, 5]       2-5 different values of a pool (or inline list)
    [concat, "@", [choice, x]]    the parts as text, joined; strings are literal
    [dict_of, {key: spec}, 1, 2]  1-2 of the keys, each with a value of its spec

Each sampler makes the same random draws in the same order as the code it replaced, so rows are unchanged.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fcdist.errors import InputError

CATALOGUE_FILE = Path(__file__).with_name("synth_catalogue.yaml")
TYPES = ("str", "int", "float", "bool", "List[int]", "List[str]", "List[float]", "Dict[str, Any]")  # xlam's
TEMPLATE_KINDS = ("single", "noun", "parallel", "multi_call")

Sampler = Callable[[random.Random], Any]


class CatalogueError(InputError):
    """The catalogue file is unreadable or malformed; the message names the file and the key."""


# ---------------------------------------------------------------- samplers


def choice(values: Sequence[Any]) -> Sampler:
    return lambda rng: rng.choice(values)


def ints(low: int, high: int) -> Sampler:
    return lambda rng: rng.randint(low, high)


def floats(low: float, high: float, digits: int = 2) -> Sampler:
    return lambda rng: round(rng.uniform(low, high), digits)


def list_of(item: Sampler, min_len: int, max_len: int) -> Sampler:
    return lambda rng: [item(rng) for _ in range(rng.randint(min_len, max_len))]


def distinct(values: Sequence[Any], min_len: int, max_len: int) -> Sampler:
    return lambda rng: rng.sample(values, rng.randint(min_len, max_len))


def a_date(rng: random.Random) -> str:
    return f"{rng.randint(2019, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def code(alphabet: str, length: int, prefix: str = "") -> Sampler:
    return lambda rng: prefix + "".join(rng.choice(alphabet) for _ in range(length))


def concat(*parts: Sampler | str) -> Sampler:
    return lambda rng: "".join(part if isinstance(part, str) else str(part(rng)) for part in parts)


def dict_of(options: dict[str, Sampler], min_keys: int, max_keys: int) -> Sampler:
    keys = sorted(options)  # drawn from in sorted order, whatever order the file lists them in
    return lambda rng: {key: options[key](rng) for key in rng.sample(keys, rng.randint(min_keys, max_keys))}


# sampler name -> (builder, its arguments: values = a pool name or inline list, "?" = may be left out, "*" = any number)
SAMPLERS: dict[str, tuple[Callable[..., Sampler], tuple[str, ...]]] = {
    "choice": (choice, ("values",)),
    "ints": (ints, ("int", "int")),
    "floats": (floats, ("number", "number", "int?")),
    "date": (lambda: a_date, ()),
    "code": (code, ("str", "int", "str?")),
    "list_of": (list_of, ("sampler", "int", "int")),
    "distinct": (distinct, ("values", "int", "int")),
    "concat": (concat, ("part*",)),
    "dict_of": (dict_of, ("options", "int", "int")),
}


ARGUMENT_WORDS = {"int": "an integer", "number": "a number", "str": "a string", "options": "a mapping of key: sampler spec"}


def build_sampler(spec: Any, pools: dict[str, tuple[str, ...]], where: str) -> Sampler:
    """The sampler a spec such as ``[floats, -45.0, 65.0, 4]`` describes."""
    if not isinstance(spec, list) or not spec or not isinstance(spec[0], str) or spec[0] not in SAMPLERS:
        raise CatalogueError(f"{where}: expected [SAMPLER, arguments...] with SAMPLER one of {', '.join(SAMPLERS)}; got {spec!r}")
    builder, shape = SAMPLERS[spec[0]]
    args = spec[1:]
    if shape == ("part*",):
        shape = ("part",) * len(args)
    if not sum(not s.endswith("?") for s in shape) <= len(args) <= len(shape):
        raise CatalogueError(f"{where}: {spec[0]} takes arguments ({', '.join(shape)}); got {args!r}")
    return builder(*(_argument(s.rstrip("?"), a, pools, f"{where}[{i}]") for i, (s, a) in enumerate(zip(shape, args), 1)))


def _argument(shape: str, value: Any, pools: dict[str, tuple[str, ...]], where: str) -> Any:
    if shape == "values":
        return _values(value, pools, where)
    if shape == "sampler" or (shape == "part" and not isinstance(value, str)):
        return build_sampler(value, pools, where)
    if shape == "options" and isinstance(value, dict) and value:
        return {str(key): build_sampler(spec, pools, f"{where}.{key}") for key, spec in value.items()}
    expected = {"int": int, "number": (int, float), "str": str, "part": str}.get(shape)
    if expected and isinstance(value, expected) and not isinstance(value, bool):
        return value
    raise CatalogueError(f"{where}: expected {ARGUMENT_WORDS[shape]}; got {value!r}")


def _values(value: Any, pools: dict[str, tuple[str, ...]], where: str) -> tuple[Any, ...]:
    if isinstance(value, str):
        if value not in pools:
            raise CatalogueError(f"{where}: no pool named {value!r} under pools")
        return pools[value]
    if isinstance(value, list) and value:
        return tuple(value)
    raise CatalogueError(f"{where}: expected a pool name or a non-empty list of values; got {value!r}")


# ---------------------------------------------------------------- the catalogue's parts


@dataclass(frozen=True)
class Kind:
    """One kind of parameter: its xlam name and type, how docs describe it, how queries mention it."""

    name: str
    type_name: str  # xlam-style, without the ", optional" suffix
    descriptions: tuple[str, ...]
    phrases: tuple[str, ...]  # query fragments; "{v}" is the value as text
    sample: Sampler
    default: Any = ""  # what applies when an optional parameter is left out


@dataclass(frozen=True)
class Verb:
    doc: str  # how a doc starts: "Retrieves"
    actions: tuple[str, ...]  # how queries say it: "get", "fetch", "look up"


@dataclass(frozen=True)
class DomainObject:
    snake: str  # the middle of function names: get_<snake>_by_city
    noun: str  # what the functions return: "the weather forecast"
    required: tuple[str, ...]  # kind roles every call gives
    optional: tuple[str, ...]  # kind roles a function may take (some are dropped per function)


@dataclass(frozen=True)
class Lookup:
    suffix: str  # the end of function names ("" for none)
    described_as: str  # how the doc names the key: "for a given city name"
    required: tuple[str, ...]  # kind roles of the key


@dataclass(frozen=True)
class Domain:
    """An API family; its functions are verbs x objects x lookup keys."""

    name: str
    apis: tuple[str, ...]
    verbs: tuple[str, ...]
    objects: tuple[DomainObject, ...]
    lookups: tuple[Lookup, ...]


@dataclass(frozen=True)
class Utility:
    """A stand-alone function (calculator, converter, text tool)."""

    name: str
    noun: str
    actions: tuple[str, ...]
    required: tuple[str, ...]
    optional: tuple[str, ...]
    doc: str


@dataclass(frozen=True)
class Catalogue:
    kinds: dict[str, Kind]  # by role; several roles share an xlam name
    verbs: dict[str, Verb]
    domains: tuple[Domain, ...]
    utilities: tuple[Utility, ...]
    doc_sentences: tuple[str, ...]  # stock sentences tool docs append
    param_sentences: tuple[str, ...]  # stock sentences parameter docs append
    templates: dict[str, tuple[str, ...]]  # TEMPLATE_KINDS -> query templates


# ---------------------------------------------------------------- reading the file


@functools.lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The shipped catalogue, read once."""
    return load_catalogue(CATALOGUE_FILE)


def load_catalogue(path: Path) -> Catalogue:
    """Read and check a catalogue file; any problem is one CatalogueError naming the file and the key."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
        return _catalogue(data)
    except OSError as e:
        raise CatalogueError(f"{path}: cannot read the synth catalogue: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise CatalogueError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
    except CatalogueError as e:
        raise CatalogueError(f"{path}: {e}") from None


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser: 10x faster
    """SafeLoader that refuses a repeated key (plain YAML keeps the last one silently: a lost kind or domain)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise CatalogueError(f"line {key_node.start_mark.line + 1}: key {key!r} appears twice in one mapping")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _catalogue(data: Any) -> Catalogue:
    top = _mapping(data, "top level", ("pools", "kinds", "verbs", "domains", "utilities", "doc_sentences",
                                      "param_sentences", "templates"))
    pools = {name: _strings(values, f"pools.{name}") for name, values in _mapping(top["pools"], "pools").items()}
    kinds = {role: _kind(role, spec, pools) for role, spec in _mapping(top["kinds"], "kinds").items()}
    verbs = {verb: _verb(spec, f"verbs.{verb}") for verb, spec in _mapping(top["verbs"], "verbs").items()}
    domains = tuple(_domain(name, spec, kinds, verbs) for name, spec in _mapping(top["domains"], "domains").items())
    utilities = tuple(_utility(name, spec, kinds) for name, spec in _mapping(top["utilities"], "utilities").items())
    templates = _mapping(top["templates"], "templates", TEMPLATE_KINDS)
    return Catalogue(kinds, verbs, domains, utilities, _strings(top["doc_sentences"], "doc_sentences"),
                     _strings(top["param_sentences"], "param_sentences"),
                     {name: _strings(templates[name], f"templates.{name}") for name in TEMPLATE_KINDS})


def _kind(role: str, spec: Any, pools: dict[str, tuple[str, ...]]) -> Kind:
    where = f"kinds.{role}"
    spec = _mapping(spec, where, ("type", "descriptions", "phrases", "sample"), ("name", "default"))
    if spec["type"] not in TYPES:
        raise CatalogueError(f"{where}.type: {spec['type']!r} is not one of {', '.join(TYPES)}")
    return Kind(_text(spec.get("name", role), f"{where}.name"), spec["type"],
                _strings(spec["descriptions"], f"{where}.descriptions"), _strings(spec["phrases"], f"{where}.phrases"),
                _drawable(build_sampler(spec["sample"], pools, f"{where}.sample"), f"{where}.sample"),
                spec.get("default", ""))


def _drawable(sampler: Sampler, where: str) -> Sampler:
    """The sampler, once it has drawn a value: bounds the arguments cannot express (ints 5..1, 5 distinct
    values of a pool of 3) fail here, naming the key, rather than in the middle of a run."""
    for seed in range(20):  # several draws: a random length may reach the bound only sometimes
        try:
            sampler(random.Random(seed))
        except (ValueError, IndexError) as e:
            raise CatalogueError(f"{where}: cannot draw a value: {e}") from None
    return sampler


def _verb(spec: Any, where: str) -> Verb:
    spec = _mapping(spec, where, ("doc", "actions"))
    return Verb(_text(spec["doc"], f"{where}.doc"), _strings(spec["actions"], f"{where}.actions"))


def _domain(name: str, spec: Any, kinds: dict[str, Kind], verbs: dict[str, Verb]) -> Domain:
    where = f"domains.{name}"
    spec = _mapping(spec, where, ("apis", "verbs", "objects", "lookups"))
    domain_verbs = _strings(spec["verbs"], f"{where}.verbs")
    for verb in domain_verbs:
        if verb not in verbs:
            raise CatalogueError(f"{where}.verbs: {verb!r} is not one of the verbs ({', '.join(verbs)})")
    objects = tuple(_domain_object(snake, obj, kinds, f"{where}.objects.{snake}")
                    for snake, obj in _mapping(spec["objects"], f"{where}.objects").items())
    if not isinstance(spec["lookups"], list) or not spec["lookups"]:
        raise CatalogueError(f"{where}.lookups: expected a non-empty list")
    lookups = tuple(_lookup(item, kinds, f"{where}.lookups[{i}]") for i, item in enumerate(spec["lookups"]))
    return Domain(name, _strings(spec["apis"], f"{where}.apis"), domain_verbs, objects, lookups)


def _domain_object(snake: str, spec: Any, kinds: dict[str, Kind], where: str) -> DomainObject:
    spec = _mapping(spec, where, ("noun",), ("required", "optional"))
    return DomainObject(snake, _text(spec["noun"], f"{where}.noun"), _roles(spec, "required", kinds, where),
                        _roles(spec, "optional", kinds, where))


def _lookup(spec: Any, kinds: dict[str, Kind], where: str) -> Lookup:
    spec = _mapping(spec, where, ("suffix", "described_as", "required"))
    return Lookup(_text(spec["suffix"], f"{where}.suffix", empty=True), _text(spec["described_as"], f"{where}.described_as"),
                  _roles(spec, "required", kinds, where))


def _utility(name: str, spec: Any, kinds: dict[str, Kind]) -> Utility:
    where = f"utilities.{name}"
    spec = _mapping(spec, where, ("noun", "actions", "doc"), ("required", "optional"))
    return Utility(name, _text(spec["noun"], f"{where}.noun"), _strings(spec["actions"], f"{where}.actions"),
                   _roles(spec, "required", kinds, where), _roles(spec, "optional", kinds, where),
                   _text(spec["doc"], f"{where}.doc"))


def _roles(spec: dict, key: str, kinds: dict[str, Kind], where: str) -> tuple[str, ...]:
    """Kind roles listed under ``key`` (none if the key is left out); each must be a key of kinds."""
    roles = _strings(spec[key], f"{where}.{key}") if spec.get(key) not in (None, []) else ()
    for role in roles:
        if role not in kinds:
            raise CatalogueError(f"{where}.{key}: {role!r} is not a kind (a key under kinds)")
    return roles


def _mapping(value: Any, where: str, required: Sequence[str] = (), optional: Sequence[str] = ()) -> dict:
    """A non-empty mapping with the ``required`` keys, and no key besides those and ``optional`` (when given)."""
    if not isinstance(value, dict) or not value:
        raise CatalogueError(f"{where}: expected a non-empty mapping; got {value!r}")
    missing = [key for key in required if key not in value]
    unknown = [key for key in value if key not in (*required, *optional)] if required else []
    if missing or unknown:
        problem = f"missing {', '.join(missing)}" if missing else f"unknown key {', '.join(map(str, unknown))}"
        raise CatalogueError(f"{where}: {problem} (keys: {', '.join((*required, *optional))})")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise CatalogueError(f"{where}: expected a non-empty list of strings; got {value!r}")
    return tuple(_text(item, f"{where}[{i}]") for i, item in enumerate(value))


def _text(value: Any, where: str, empty: bool = False) -> str:
    if not isinstance(value, str) or not (value or empty):
        hint = " (quote it: YAML reads NO, no, on, 2024 as non-strings)" if isinstance(value, (bool, int, float)) else ""
        raise CatalogueError(f"{where}: expected a {'' if empty else 'non-empty '}string; got {value!r}{hint}")
    return value
