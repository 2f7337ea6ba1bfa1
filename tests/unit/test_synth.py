"""fcdist synth: rows match the xlam schema exactly, are deterministic, varied, answerable and xlam-sized."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

import pytest

from fcdist.data.render import render_text
from fcdist.data.synth import function_catalogue, generate_rows, main
from fcdist.data.xlam import read_rows

ROW_COUNT = 2000
BASE_TYPES = {"str", "int", "float", "bool", "List[int]", "List[str]", "List[float]", "Dict[str, Any]"}
PYTHON_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "List[int]": list, "List[str]": list,
                "List[float]": list, "Dict[str, Any]": dict}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return generate_rows(ROW_COUNT, seed=1)  # not the seed-0 rows the tiny tokenizer was trained on


@pytest.fixture(scope="module")
def decoded(rows) -> list[tuple[dict, list[dict], list[dict]]]:
    return [(row, json.loads(row["tools"]), json.loads(row["answers"])) for row in rows]


def base_type(type_name: str) -> str:
    return type_name.removesuffix(", optional")


def shape(tools: list[dict], answers: list[dict]) -> str:
    if len(answers) == 1:
        return "simple" if len(tools) == 1 else "multiple"
    return "parallel" if len({a["name"] for a in answers}) == 1 else "parallel_multiple"


def test_columns_and_ids(rows):
    assert all(list(row) == ["id", "query", "answers", "tools"] for row in rows)
    assert [row["id"] for row in rows] == list(range(ROW_COUNT))
    assert all(isinstance(row["query"], str) and row["query"] for row in rows)
    assert all(isinstance(row["tools"], str) and isinstance(row["answers"], str) for row in rows)


def test_tool_and_parameter_shape(decoded):
    for _, tools, answers in decoded:
        assert 1 <= len(tools) <= 8 and answers
        for tool in tools:
            assert set(tool) == {"name", "description", "parameters"}
            assert isinstance(tool["description"], str) and tool["description"]
            assert 1 <= len(tool["parameters"]) <= 5
            for spec in tool["parameters"].values():
                assert set(spec) <= {"description", "type", "default"} and isinstance(spec["description"], str)
                assert base_type(spec["type"]) in BASE_TYPES
                if spec["type"].endswith(", optional"):
                    assert "default" in spec


def test_numeric_defaults_come_as_values_and_as_strings(decoded):
    defaults = [spec["default"] for _, tools, _ in decoded for t in tools for spec in t["parameters"].values()
                if spec["type"].startswith(("int", "float")) and spec["type"].endswith("optional")]
    assert any(isinstance(d, str) for d in defaults) and any(isinstance(d, (int, float)) for d in defaults)


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path):
    first, second, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    for out, seed in ((first, 3), (second, 3), (other, 4)):
        assert main(["--out", str(out), "--rows", "300", "--seed", str(seed)]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_other_formats_hold_the_same_rows(tmp_path: Path, suffix: str):
    import datasets

    out = tmp_path / f"rows{suffix}"
    assert main(["--out", str(out), "--rows", "50", "--seed", "1"]) == 0
    loaded = datasets.load_dataset("parquet" if suffix == ".parquet" else "json", data_files=str(out), split="train")
    assert loaded.to_list() == generate_rows(50, seed=1)
    assert not list(tmp_path.glob(".*tmp*"))  # the temp file was renamed, not left behind


def test_help_and_bad_extension(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "usage: fcdist synth" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown format"):
        main(["--out", str(tmp_path / "rows.csv"), "--rows", "5"])


def test_catalogue_is_broad_and_names_are_unique(decoded):
    names = {tool["name"] for _, tools, _ in decoded for tool in tools}
    assert len(names) >= 200
    catalogue = [f.name for f in function_catalogue()]
    assert len(catalogue) == len(set(catalogue))


def test_all_four_shapes_with_simple_most_common(decoded):
    counts = Counter(shape(tools, answers) for _, tools, answers in decoded)
    assert set(counts) == {"simple", "multiple", "parallel", "parallel_multiple"}
    assert counts.most_common(1)[0][0] == "simple"
    assert min(counts.values()) >= 0.1 * ROW_COUNT


def test_calls_match_their_tools(decoded):
    for _, tools, answers in decoded:
        by_name = {tool["name"]: tool["parameters"] for tool in tools}
        for call in answers:
            params = by_name[call["name"]]
            assert set(call["arguments"]) <= set(params)
            required = {name for name, spec in params.items() if not spec["type"].endswith(", optional")}
            assert required <= set(call["arguments"])
            # values keep their kind's type; a declared type may be xlam's quirk (int declared "str", float "int")
            for name, value in call["arguments"].items():
                declared = base_type(params[name]["type"])
                allowed = {"str": (str, int), "int": (int, float)}.get(declared, PYTHON_TYPES[declared])
                assert isinstance(value, allowed)


def _stats():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "bench" / "synth_stats.py"
    spec = importlib.util.spec_from_file_location("synth_stats", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Ranges for 3,000 rows: around the real sample's direction (bench/synth_stats.py --real), not past it.
SYNTH_RANGES = {"verbatim_share": (0.5, 0.75), "two_call_share": (0.25, 0.45), "several_functions_share": (0.22, 0.4),
                "type_mismatch_share": (0.03, 0.1), "optional_argument_share": (0.22, 0.38)}


def test_statistics_lie_in_the_stated_ranges():
    stats = _stats()
    rows = stats.synth_rows(3000, seed=1)  # parse_row validates every row
    for name, (low, high) in SYNTH_RANGES.items():
        assert low <= getattr(stats, name)(rows) <= high, name
    defaults = stats.default_shares(rows)
    assert defaults["has_default"] >= 0.8 and 0.15 <= defaults["empty_default"] <= 0.3
    assert defaults["non_string_default"] <= 0.08
    mean_tools, max_tools = stats.tools_per_row(rows)
    assert 2.2 <= mean_tools <= 2.8 and max_tools == 8


def test_the_real_sample_measures_as_the_issue_table(real_rows_file):
    stats = _stats()
    rows, _ = read_rows(str(real_rows_file), on_bad_row="skip")
    column = stats.measure(rows)
    assert column["argument values found word for word in the query"] == "41%"
    assert column["tools per row (mean, max)"].endswith(", 8")
    assert column["argument type differs from the declared type"] == "6%"


def test_mapped_values_follow_from_the_query(decoded):
    """Values the query implies: the ticker of a named company, a date relative to the stated today."""
    from fcdist.data.synth_mentions import TICKERS

    seen = Counter()
    for row, _, answers in decoded:
        for call in answers:
            symbol = call["arguments"].get("symbol")
            if symbol in TICKERS and symbol not in row["query"]:
                assert any(name in row["query"] for name in TICKERS[symbol]), row
                seen["ticker"] += 1
            for value in call["arguments"].values():
                if "tomorrow" in row["query"] and isinstance(value, str) and value[:2] == "20" and value not in row["query"]:
                    seen["dated"] += "Today is " in row["query"]
    assert seen["ticker"] >= 20 and seen["dated"] >= 10


def test_lengths_look_like_xlam(decoded, tiny_model_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = [render_text(row["query"], tools, answers) + tokenizer.eos_token for row, tools, answers in decoded]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    over_512 = sum(n > 512 for n in lengths) / len(lengths)
    assert 200 <= statistics.median(lengths) <= 400
    assert 0.05 <= over_512 <= 0.25
