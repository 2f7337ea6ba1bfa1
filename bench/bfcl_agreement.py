"""Benchmark (not a test): ``fcdist score --rules bfcl`` against BFCL's own AST checker, verdict by verdict.

    python bench/bfcl_agreement.py [--cases 400] [--seed 0] [--bfcl-data DIR] [--out bench/results/NAME]

Needs the ``bfcl-eval`` package importable (its checker, not its heavy dependencies): ``make setup`` installs
it into .venv (``pip install --no-deps bfcl-eval==2026.3.23``); a venv of its own works too
(``pip install --no-deps bfcl-eval filelock``; fcdist itself is found from this checkout). Only the checker's function
name conversion reads the model table, which imports every API client; a stand-in table without it is put in
its place, so the checker's own code runs unchanged.

Cases: --cases generated BFCL-format cases per category (simple, multiple, parallel, parallel_multiple,
irrelevance; random function docs of every BFCL type, possible answers with alternatives and ``""``), and with
--bfcl-data the question and possible-answer files of a BFCL data folder (e.g. bfcl_eval/data inside the
installed package; read in place, never copied). The generated cases are written as such a folder (a temporary
one), and both are read by fcdist's own reader, ``fcdist.data.bfcl.read_folder`` (what ``fcdist eval bfcl``
scores against), so the agreement measures the shipped conversion and scoring together. Each case gets predictions: the right answer
(several ways) and typical mistakes (wrong type, wrong value, strings in another case or spacing, missing and
extra arguments, optional arguments left out or given as "", swapped parallel order, wrong function, an int for
a float, also inside lists, dict keys, no call, prose). Both checkers judge each prediction; the table gives
agreement per category and the disagreements' first examples.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import types
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a plain checkout

from fcdist.data.bfcl import ANSWERS, NO_ANSWERS, accepted_values, json_lines, possible_answers, read_folder  # noqa: E402
from fcdist.data.xlam import SkipReport, parse_row  # noqa: E402
from fcdist.score import score_row  # noqa: E402

CATEGORIES = {"simple": "simple_python", "multiple": "multiple", "parallel": "parallel",
              "parallel_multiple": "parallel_multiple", "irrelevance": "irrelevance"}  # fcdist name -> BFCL v4 name


def load_bfcl_checker():
    """BFCL's ast_checker and is_empty_output, with a stand-in model table (see the module docstring)."""

    class NoDotConversion(dict):
        def __missing__(self, name):
            return types.SimpleNamespace(underscore_to_dot=False)

    # At import BFCL makes result/, score/ and .file_locks/ in its project root, by default beside the installed
    # package (inside the environment): a temporary folder takes them unless the caller names one.
    os.environ.setdefault("BFCL_PROJECT_ROOT", tempfile.mkdtemp(prefix="bfcl-checker-"))
    table = types.ModuleType("bfcl_eval.constants.model_config")
    table.MODEL_CONFIG_MAPPING = NoDotConversion()
    sys.modules["bfcl_eval.constants.model_config"] = table
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.utils import is_empty_output

    def verdict(case, category, decoded):
        if category == "irrelevance":
            return decoded is None or is_empty_output(decoded)
        if decoded is None:  # BFCL: the decoder failed
            return False
        result = ast_checker(case["function"], decoded, case["ground_truth"], Language.PYTHON,
                             CATEGORIES[category], "fcdist-bench")
        return result["valid"]

    return verdict


# ---------------------------------------------------------------- generated BFCL-format cases

WORDS = ["San Francisco", "New York, NY", "machine-learning", "Dr. Smith", "2024-01-15", "rock_n_roll", "USD",
         "ice cream", "A*B^C", "Paris"]


def random_schema(rng: random.Random, depth: int = 0) -> dict:
    kinds = ["string", "integer", "float", "boolean", "array", "dict", "tuple", "any"] if depth == 0 else \
        ["string", "integer", "float", "boolean", "dict"]
    kind = rng.choices(kinds, weights=[6, 4, 3, 2, 3, 1, 1, 1][: len(kinds)])[0]
    schema = {"type": kind, "description": f"a {kind}"}
    if kind in ("array", "tuple"):
        schema["items"] = random_schema(rng, depth + 1)
    return schema


def random_value(rng: random.Random, schema: dict):
    kind = schema["type"]
    if kind in ("string", "any"):
        return rng.choice(WORDS)
    if kind == "integer":
        return rng.randint(0, 50)
    if kind == "float":
        return rng.choice([rng.randint(1, 9) / 4, float(rng.randint(1, 9)), rng.randint(1, 9)])  # BFCL's data has ints too
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "dict":
        return {k: [random_value(rng, {"type": "string"})] + ([""] if rng.random() < 0.3 else [])
                for k in rng.sample(["name", "city", "unit"], rng.randint(1, 2))}
    return [random_value(rng, schema["items"]) for _ in range(rng.randint(1, 3))]


def random_function(rng: random.Random, number: int) -> dict:
    names = rng.sample(["city", "days", "ratio", "tags", "flag", "unit", "limit", "point", "options", "items", "note"],
                       rng.randint(1, 5))
    properties = {name: random_schema(rng) for name in names}
    for spec in properties.values():
        if rng.random() < 0.2 and spec["type"] not in ("dict", "array", "tuple"):
            spec["default"] = random_value(rng, spec)
    required = [n for n in names if rng.random() < 0.6] or names[:1]
    name = rng.choice(["get_weather", "math.hypot", "find_hotels", "convert_units", "plot"]) + f"_{number}"
    return {"name": name, "description": "d", "parameters": {"type": "dict", "properties": properties,
                                                               "required": required}}


def random_truth(rng: random.Random, function: dict) -> dict:
    possible = {}
    for name, spec in function["parameters"]["properties"].items():
        optional = name not in function["parameters"]["required"]
        if optional and rng.random() < 0.3:
            continue  # not in the possible answer: giving it is an error
        alternatives = [random_value(rng, spec) for _ in range(rng.choice([1, 1, 2]))]
        if spec["type"] == "string" and rng.random() < 0.3:
            alternatives.append(alternatives[0].upper())
        if optional and rng.random() < 0.6:
            alternatives = rng.choice([[""], ["", *alternatives], [*alternatives, ""]])
        possible[name] = alternatives
    return {function["name"]: possible}


def generated_case(rng: random.Random, category: str, number: int) -> dict:
    functions = [random_function(rng, i) for i in range(1 if category in ("simple", "parallel") else rng.randint(2, 4))]
    question = [[{"role": "user", "content": f"generated question {number}"}]]
    if category == "irrelevance":
        return {"id": f"gen_{category}_{number}", "question": question, "function": functions}
    if category in ("simple", "multiple"):
        truth = [random_truth(rng, rng.choice(functions))]
    else:
        pool = functions if category == "parallel_multiple" else functions[:1]
        truth = [random_truth(rng, rng.choice(pool)) for _ in range(rng.randint(2, 4))]
    return {"id": f"gen_{category}_{number}", "question": question, "function": functions, "ground_truth": truth}


# ---------------------------------------------------------------- predictions: right answers and mistakes


def right_calls(case: dict, rng: random.Random | None, omit_optional: bool) -> list[dict]:
    """The ground truth as a model would write it: per argument its first acceptable value (or with rng a random
    one; dict alternatives as the whole dicts fcdist's reader makes of them), none where only "" is listed."""
    functions = {f["name"]: f for f in case["function"]}
    calls = []
    for truth in case["ground_truth"]:
        (name, possible), = truth.items()
        properties = functions[name]["parameters"]["properties"]
        arguments = {}
        for arg, listed in possible.items():
            accepted = [v for answer in listed if answer != "" for v in accepted_values(answer, properties.get(arg, {}))]
            if accepted and not (omit_optional and "" in listed):
                arguments[arg] = rng.choice(accepted) if rng else accepted[0]
        calls.append({name: arguments})
    return calls


def _string_variants(text: str) -> list[str]:
    return [text.upper(), text.replace(" ", ""), text.replace(" ", "_"), f" {text}.", text.replace(",", "")]


def _value_mistakes(value, spec: dict) -> list:
    kind = spec.get("type")
    if isinstance(value, bool):
        return [not value, int(value), str(value).lower()]
    if isinstance(value, int):
        return [value + 1, float(value), str(value), True]
    if isinstance(value, float):
        return [value + 0.5, int(value), str(value)] + ([int(value)] if value.is_integer() else [])
    if isinstance(value, str):
        return _string_variants(value) + ["zz" + value, "", 7]
    if isinstance(value, list):
        out = [list(reversed(value)), [], value[:1] * 2, [value]]
        if value and isinstance(value[0], str):
            out.append([value[0].upper()] + value[1:])
        if value and isinstance(value[0], float):
            out.append([int(value[0])] + value[1:])
        if value and isinstance(value[0], int) and not isinstance(value[0], bool):
            out.append([float(value[0])] + value[1:])
        if value and isinstance(value[0], dict):
            out.append([{k: str(v).upper() for k, v in value[0].items()}] + value[1:])
        return out
    if isinstance(value, dict):
        out = [{**value, "extra": "x"}, {k: str(v).upper() for k, v in value.items()}, str(value)]
        if value:
            out.append(dict(list(value.items())[1:]))
        return out
    return [kind]


def mutations(case: dict, category: str, rng: random.Random) -> list[tuple[str, list | None]]:
    """(what, decoded calls as BFCL's decoder gives them, or None where it cannot decode any)."""
    out = [("no call", []), ("prose", None)]
    functions = case["function"]
    if category == "irrelevance":
        for function in functions:
            truth = random_truth(rng, function)
            out.append(("a call", right_calls({"function": functions, "ground_truth": [truth]}, None, False)))
        return out
    base = right_calls(case, None, False)
    out += [("right (first answers)", base), ("right (random answers)", right_calls(case, rng, False)),
            ("right, optional left out", right_calls(case, None, True))]
    if len(base) > 1:
        out += [("right, reversed order", base[::-1]), ("one call dropped", base[1:]), ("one call twice", base + base[:1])]
    by_name = {f["name"]: f for f in functions}
    for index, call in enumerate(base):
        (name, arguments), = call.items()
        properties = by_name[name]["parameters"]["properties"]

        def changed(new_call, what):
            out.append((what, base[:index] + [new_call] + base[index + 1:]))

        others = [f["name"] for f in functions if f["name"] != name]
        changed({(others[0] if others else name + "_v2"): arguments}, "wrong function")
        changed({name: {**arguments, "unknown_arg": 1}}, "unknown argument")
        for arg, spec in properties.items():
            if arg in arguments:
                changed({name: {k: v for k, v in arguments.items() if k != arg}}, f"{arg} left out")
                for wrong in _value_mistakes(arguments[arg], spec):
                    changed({name: {**arguments, arg: wrong}}, f"{arg} = {type(wrong).__name__} mistake")
            else:
                given = spec.get("default", random_value(rng, spec) if spec["type"] != "dict" else {"name": "x"})
                changed({name: {**arguments, arg: given}}, f"{arg} given (default or other)")
                if spec["type"] == "string":
                    changed({name: {**arguments, arg: ""}}, f"{arg} given as ''")
    return out


def completion(decoded: list | None) -> str:
    if decoded is None:
        return "I would call the weather service, but I need more details."
    lines = [json.dumps({"name": name, "arguments": arguments}) for call in decoded for name, arguments in call.items()]
    return "\n".join(lines) + "</calls>"


# ---------------------------------------------------------------- the comparison


def write_folder(cases: list[tuple[str, dict]], folder: Path) -> Path:
    """Generated cases as a BFCL data folder (question files, possible_answer/), for fcdist's reader to read."""
    (folder / ANSWERS).mkdir(parents=True, exist_ok=True)
    for category, stem in CATEGORIES.items():
        mine = [case for name, case in cases if name == category]
        questions = [{k: v for k, v in case.items() if k != "ground_truth"} for case in mine]
        (folder / f"BFCL_v4_{stem}.json").write_text("".join(json.dumps(q) + "\n" for q in questions))
        if category not in NO_ANSWERS:
            answers = [{"id": case["id"], "ground_truth": case["ground_truth"]} for case in mine]
            (folder / ANSWERS / f"BFCL_v4_{stem}.json").write_text("".join(json.dumps(a) + "\n" for a in answers))
    return folder


def read_cases(folder: Path) -> list[tuple[str, dict, dict]]:
    """(category, BFCL's case with its ground_truth, gold row) per case of a BFCL folder. The gold rows come from
    fcdist's own reader (fcdist.data.bfcl.read_folder, what `fcdist eval bfcl` scores against), so the
    comparison measures the shipped conversion too; BFCL's checker gets the case as BFCL's files hold it."""
    rows, conversion = read_folder(folder)
    cases = {}
    for category, path in conversion.files.items():
        path = Path(path)
        truth = {} if category in NO_ANSWERS else possible_answers(path.parent / ANSWERS / path.name, "error", SkipReport())
        for _, record in json_lines(path):
            cases[str(record["id"])] = {**record, "ground_truth": truth.get(str(record["id"]), [])}
    return [(row["category"], cases[str(row["id"])], row) for row in rows]


def compare(cases: list[tuple[str, dict, dict]], verdict, seed: int) -> dict:
    rng = random.Random(seed)
    counts = defaultdict(lambda: Counter(n=0, agree=0, bfcl_correct=0, bfcl_crashed=0, fcdist_rules_agree=0))
    examples = defaultdict(list)
    for category, case, gold in cases:
        row = parse_row(gold, case["id"])
        for what, decoded in mutations(case, category, rng):
            try:
                theirs = verdict(case, category, decoded)
            except (AttributeError, TypeError, KeyError, IndexError):  # BFCL's checker fails on a few odd values
                counts[category]["bfcl_crashed"] += 1
                continue
            ours = score_row(row, completion(decoded), rules="bfcl").correct
            counts[category]["fcdist_rules_agree"] += theirs == score_row(row, completion(decoded)).correct
            counts[category]["n"] += 1
            counts[category]["agree"] += theirs == ours
            counts[category]["bfcl_correct"] += theirs
            if theirs != ours and len(examples[category]) < 5:
                examples[category].append({"id": case["id"], "mutation": what, "bfcl": theirs, "fcdist": ours,
                                           "prediction": repr(decoded)[:300]})
    return {"by_category": {c: dict(v) for c, v in counts.items()}, "disagreements": dict(examples)}


def table(result: dict, title: str) -> str:
    lines = [f"### {title}", "", "| category | cases | predictions | BFCL says correct | agreement (--rules bfcl) "
             "| agreement (--rules fcdist) | BFCL's checker crashed (left out) |", "|---|--:|--:|--:|--:|--:|--:|"]
    total = Counter()
    for category, c in result["by_category"].items():
        total.update(c)
        lines.append(f"| {category} | {result['cases'][category]} | {c['n']} | {c['bfcl_correct']} | {c['agree'] / c['n']:.2%} "
                     f"| {c['fcdist_rules_agree'] / c['n']:.2%} | {c['bfcl_crashed']} |")
    lines.append(f"| all | {sum(result['cases'].values())} | {total['n']} | {total['bfcl_correct']} "
                 f"| {total['agree'] / total['n']:.2%} | {total['fcdist_rules_agree'] / total['n']:.2%} | {total['bfcl_crashed']} |")
    return "\n".join(lines) + "\n\n"


def run(cases: list[tuple[str, dict, dict]], verdict, seed: int) -> dict:
    result = compare(cases, verdict, seed)
    result["cases"] = dict(Counter(category for category, _, _ in cases))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        usage="python bench/bfcl_agreement.py [--cases 400] [--seed 0] [--bfcl-data DIR] [--out bench/results/NAME]",
        description="Agreement of fcdist score --rules bfcl with BFCL's own AST checker, per category.")
    parser.add_argument("--cases", type=int, default=400, help="generated cases per category")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated cases and predictions")
    parser.add_argument("--bfcl-data", type=Path, help="a BFCL data folder (BFCL_v4_*.json, possible_answer/)")
    parser.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    verdict = load_bfcl_checker()
    rng = random.Random(args.seed)
    generated = [(c, generated_case(rng, c, i)) for c in CATEGORIES for i in range(args.cases)]
    with tempfile.TemporaryDirectory() as folder:
        results = {"generated": run(read_cases(write_folder(generated, Path(folder))), verdict, args.seed)}
    if args.bfcl_data:
        results["bfcl_data"] = run(read_cases(args.bfcl_data), verdict, args.seed)
    from importlib.metadata import version

    command = " ".join(["python bench/bfcl_agreement.py", *(argv if argv is not None else sys.argv[1:])])
    report = f"`{command}`, BFCL's checker from bfcl-eval {version('bfcl-eval')}\n\n"
    report += "".join(table(r, f"{name} cases") for name, r in results.items())
    print(report)
    for name, r in results.items():
        for category, found in r["disagreements"].items():
            for example in found:
                print(f"{name} {category}: {json.dumps(example)}")
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        args.out.with_suffix(".md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
