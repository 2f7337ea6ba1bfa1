"""Tests for fcdist.score: one test (at least) per scoring rule, each failing if that rule broke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fcdist.data.xlam import XlamRow
from fcdist.score import build_parser, main, score, score_row
from fcdist.score.calls import CallParseError, parse_calls
from fcdist.score.matching import call_matches, max_matching
from fcdist.score.report import markdown_table
from fcdist.score.values import parse_type

WEATHER = {
    "name": "get_weather",
    "description": "Forecast for a city.",
    "parameters": {
        "city": {"description": "City name.", "type": "str"},
        "days": {"description": "Days ahead.", "type": "int, optional", "default": "3"},
        "units": {"description": "metric or imperial.", "type": "str, optional", "default": "metric"},
    },
}
CONVERT = {
    "name": "convert",
    "description": "Convert an amount.",
    "parameters": {
        "amount": {"type": "float"},
        "round": {"type": "bool, optional", "default": "false"},
        "steps": {"type": "List[int], optional", "default": "[1, 2]"},
        "labels": {"type": "List[str], optional", "default": []},
        "options": {"type": "Dict[str, Any], optional", "default": {}},
        "extra": {"type": "Callable"},
    },
}
TIME = {"name": "get_time", "description": "Local time.", "parameters": {"zone": {"type": "str"}}}


def call(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def row(answers: list[dict], tools: list[dict] | None = None, row_id: int = 1) -> XlamRow:
    return XlamRow(row_id, "query", tools or [WEATHER], answers)


def completion(*calls: dict) -> str:
    """The seed's own output format: Python dicts, one per line, then </calls>."""
    return "\n".join(str(c) for c in calls) + "</calls>"


def weather_reason(pred: dict, gold: dict, lenient: bool = False) -> str | None:
    return call_matches(pred, gold, WEATHER, lenient)


def convert_reason(pred_args: dict, gold_args: dict, lenient: bool = False) -> str | None:
    return call_matches(call("convert", **pred_args), call("convert", **gold_args), CONVERT, lenient)


# ---------------------------------------------------------------- rule 1: reading the calls


def test_python_dict_lines_parse():
    assert parse_calls(completion(call("get_weather", city="Oslo"), call("get_time", zone="UTC"))) == [
        call("get_weather", city="Oslo"),
        call("get_time", zone="UTC"),
    ]


def test_json_lines_parse():
    text = '{"name": "convert", "arguments": {"amount": 1.5, "round": true, "options": null}}\n'
    assert parse_calls(text) == [call("convert", amount=1.5, round=True, options=None)]


def test_a_line_holding_a_list_of_calls_parses():
    text = json.dumps([call("get_weather", city="Oslo"), call("get_time", zone="UTC")]) + "</calls>"
    assert [c["name"] for c in parse_calls(text)] == ["get_weather", "get_time"]


def test_text_after_calls_close_is_ignored():
    text = completion(call("get_weather", city="Oslo")) + "\nnot a call at all\n" + str(call("get_time", zone="UTC"))
    assert parse_calls(text) == [call("get_weather", city="Oslo")]


def test_calls_after_the_last_calls_open_are_used():
    first_try = "<calls>" + str(call("get_time", zone="UTC")) + "</calls> again: "
    text = first_try + "<calls>\n" + completion(call("get_weather", city="Oslo"))
    assert parse_calls(text) == [call("get_weather", city="Oslo")]


def test_blank_lines_are_skipped_and_a_missing_close_reads_to_the_end():
    assert parse_calls("\n  \n" + str(call("get_weather", city="Oslo")) + "\n\n") == [call("get_weather", city="Oslo")]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("get_weather(city='Oslo')", "neither JSON nor a Python literal"),
        ("{'name': 'get_weather'}", "exactly 'name' and 'arguments'"),
        ("{'name': 'get_weather', 'arguments': {}, 'id': 1}", "exactly 'name' and 'arguments'"),
        ("{'name': 3, 'arguments': {}}", "'name' must be a string"),
        ("{'name': 'get_weather', 'arguments': ['Oslo']}", "'arguments' of get_weather must be a dict"),
        ("[{'name': 'get_weather', 'arguments': {}}, 'Oslo']", "exactly 'name' and 'arguments'"),
        ("42", "exactly 'name' and 'arguments'"),
    ],
)
def test_anything_else_is_unparsable(text, fragment):
    with pytest.raises(CallParseError, match=fragment):
        parse_calls(text)


def test_unparsable_row_is_wrong_and_says_so():
    result = score_row(row([call("get_weather", city="Oslo")]), "the weather in Oslo</calls>")
    assert (result.parsed, result.correct, result.names_match) == (False, False, False)
    assert result.reason.startswith("unparsable: calls line 1")


# ---------------------------------------------------------------- rule 2: counting and pairing


def test_wrong_number_of_calls_is_wrong():
    oslo = call("get_weather", city="Oslo")
    assert score_row(row([oslo]), completion(oslo, oslo)).reason == "expected 1 call(s), got 2"
    assert score_row(row([oslo, oslo]), completion(oslo)).reason == "expected 2 call(s), got 1"
    assert score_row(row([oslo]), "</calls>").reason == "expected 1 call(s), got 0"


def test_calls_match_in_any_order():
    gold = row([call("get_weather", city="Oslo"), call("get_time", zone="UTC")], [WEATHER, TIME])
    result = score_row(gold, completion(call("get_time", zone="UTC"), call("get_weather", city="Oslo")))
    assert (result.correct, result.reason) == (True, "ok")


def test_duplicate_calls_pair_one_to_one():
    gold = row([call("get_weather", city="Oslo"), call("get_weather", city="Rome")])
    twice_oslo = score_row(gold, completion(call("get_weather", city="Oslo"), call("get_weather", city="Oslo")))
    assert not twice_oslo.correct
    assert twice_oslo.reason == "call 2 get_weather: argument 'city' = 'Oslo', expected str 'Rome'"


def test_pairing_is_not_greedy():
    # The first predicted call fits both gold calls, the second only the first gold call: first-fit
    # would hand gold 1 to the first call and leave the second without a partner.
    assert max_matching([[True, True], [True, False]]) == [1, 0]
    assert max_matching([[True, False], [True, False]]) in ([0, None], [None, 0])


def test_pairing_is_not_greedy_on_a_row():
    # xlam has gold values off their declared type: here 3.0 for an int. A prediction of 3 fits both
    # gold calls (equal int), one of 3.0 only the identical gold call.
    gold = row([call("get_weather", city="Oslo", days=3.0), call("get_weather", city="Oslo", days=3)])
    pred = completion(call("get_weather", city="Oslo", days=3), call("get_weather", city="Oslo", days=3.0))
    assert score_row(gold, pred).correct


def test_a_call_too_many_to_one_function_is_named():
    gold = row([call("get_weather", city="Oslo"), call("get_time", zone="UTC")], [WEATHER, TIME])
    result = score_row(gold, completion(call("get_weather", city="Oslo"), call("get_weather", city="Oslo")))
    expected = "call 2 get_weather: one call too many to get_weather (expected calls: get_weather, get_time)"
    assert result.reason == expected


# ---------------------------------------------------------------- rule 3: one call against a gold call


def test_matching_call_returns_none():
    assert weather_reason(call("get_weather", city="Oslo", days=5), call("get_weather", city="Oslo", days=5)) is None


def test_names_must_be_equal():
    assert call_matches(call("get_time", zone="UTC"), call("get_weather", city="Oslo"), WEATHER, False) == (
        "called get_time, expected get_weather"
    )


def test_function_must_be_one_of_the_rows_tools():
    result = score_row(row([call("get_weather", city="Oslo")]), completion(call("get_forecast", city="Oslo")))
    assert (result.correct, result.reason) == (False, "call 1 get_forecast: not one of the row's tools")
    assert call_matches(call("get_time", zone="UTC"), call("get_time", zone="UTC"), WEATHER, False) == (
        "get_time is not the tool get_weather"
    )


def test_argument_that_is_not_a_parameter_is_wrong():
    reason = weather_reason(call("get_weather", city="Oslo", country="NO"), call("get_weather", city="Oslo"))
    assert reason == "argument 'country' is not a parameter of get_weather"


def test_omitted_argument_whose_gold_value_is_the_default_is_ok():
    assert weather_reason(call("get_weather", city="Oslo"), call("get_weather", city="Oslo", days=3)) is None
    assert weather_reason(call("get_weather", city="Oslo"), call("get_weather", city="Oslo", units="metric")) is None


def test_omitted_argument_whose_gold_value_is_not_the_default_is_wrong():
    assert weather_reason(call("get_weather", city="Oslo"), call("get_weather", city="Oslo", days=5)) == (
        "argument 'days' missing, expected 5"
    )


def test_omitted_argument_without_default_is_wrong():
    reason = weather_reason(call("get_weather"), call("get_weather", city="Oslo"))
    assert reason == "argument 'city' missing, expected 'Oslo'"


def test_extra_argument_at_its_default_is_ok():
    assert weather_reason(call("get_weather", city="Oslo", days=3), call("get_weather", city="Oslo")) is None
    assert weather_reason(call("get_weather", city="Oslo", units="metric"), call("get_weather", city="Oslo")) is None


def test_extra_argument_at_another_value_is_wrong():
    reason = weather_reason(call("get_weather", city="Oslo", days=7), call("get_weather", city="Oslo"))
    assert reason == "argument 'days' = 7 given, but the expected call leaves it at its default '3' (3 as int)"


def test_extra_argument_without_default_is_wrong():
    tool = {"name": "f", "parameters": {"a": {"type": "int"}, "b": {"type": "int"}}}
    assert call_matches(call("f", a=1, b=2), call("f", a=1), tool, False).endswith("leaves it out (no default)")


# ---------------------------------------------------------------- rule 4: values by declared type


def test_int_is_accepted_for_float():
    assert convert_reason({"amount": 3}, {"amount": 3.0}) is None


def test_float_is_not_accepted_for_int():
    reason = weather_reason(call("get_weather", city="Oslo", days=3.5), call("get_weather", city="Oslo", days=3))
    assert reason == "argument 'days' = 3.5, expected int 3"
    assert weather_reason(call("get_weather", city="Oslo", days=3.0), call("get_weather", city="Oslo", days=3))


def test_bool_is_never_a_number():
    assert weather_reason(call("get_weather", city="Oslo", days=True), call("get_weather", city="Oslo", days=1))
    assert convert_reason({"amount": True}, {"amount": 1.0}) is not None


def test_string_is_not_a_number():
    assert weather_reason(call("get_weather", city="Oslo", days="3"), call("get_weather", city="Oslo", days=3)) == (
        "argument 'days' = '3', expected int 3"
    )
    assert convert_reason({"amount": "2.5"}, {"amount": 2.5}) is not None


def test_bool_must_be_a_bool():
    assert convert_reason({"amount": 1, "round": True}, {"amount": 1, "round": True}) is None
    assert convert_reason({"amount": 1, "round": 1}, {"amount": 1, "round": True}) is not None


def test_strings_are_exact_unless_lenient():
    pred, gold = call("get_weather", city="new-york city"), call("get_weather", city="New York City.")
    assert weather_reason(pred, gold) == "argument 'city' = 'new-york city', expected str 'New York City.'"
    assert weather_reason(pred, gold, lenient=True) is None
    assert weather_reason(call("get_weather", city="Boston"), gold, lenient=True) is not None


def test_lenient_strings_apply_inside_lists():
    assert convert_reason({"amount": 1, "labels": ["A_b"]}, {"amount": 1, "labels": ["ab"]}, lenient=True) is None
    assert convert_reason({"amount": 1, "labels": ["A_b"]}, {"amount": 1, "labels": ["ab"]}) is not None


def test_lists_compare_in_order_element_by_element():
    assert convert_reason({"amount": 1, "steps": [1, 2, 3]}, {"amount": 1, "steps": [1, 2, 3]}) is None
    assert convert_reason({"amount": 1, "steps": [3, 2, 1]}, {"amount": 1, "steps": [1, 2, 3]}) == (
        "argument 'steps'[0] = 3, expected int 1"
    )
    assert convert_reason({"amount": 1, "steps": [1, 2]}, {"amount": 1, "steps": [1, 2, 3]}).startswith(
        "argument 'steps' has 2 item(s), expected 3"
    )
    assert convert_reason({"amount": 1, "steps": [1, 2.5]}, {"amount": 1, "steps": [1, 2]}) is not None
    assert convert_reason({"amount": 1, "steps": "1, 2"}, {"amount": 1, "steps": [1, 2]}) is not None


def test_dicts_compare_by_key_recursively():
    gold = {"amount": 1, "options": {"mode": "fast", "limits": {"max": [1, 2]}}}
    assert convert_reason({"amount": 1, "options": {"limits": {"max": [1, 2]}, "mode": "fast"}}, gold) is None
    assert convert_reason({"amount": 1, "options": {"mode": "fast", "limits": {"max": [1, 3]}}}, gold) == (
        "argument 'options'['limits'] = {'max': [1, 3]}, expected {'max': [1, 2]}"
    )
    assert convert_reason({"amount": 1, "options": {"mode": "fast"}}, gold).startswith("argument 'options' has keys")


def test_string_defaults_are_converted_to_the_declared_type():
    # declared defaults "3", "false" and "[1, 2]" stand for 3, False and [1, 2]; the default as written also counts
    assert weather_reason(call("get_weather", city="Oslo", days=3), call("get_weather", city="Oslo")) is None
    assert weather_reason(call("get_weather", city="Oslo", days="3"), call("get_weather", city="Oslo")) is None
    assert weather_reason(call("get_weather", city="Oslo", days="4"), call("get_weather", city="Oslo")) is not None
    assert convert_reason({"amount": 1, "round": False}, {"amount": 1}) is None
    assert convert_reason({"amount": 1}, {"amount": 1, "steps": [1, 2]}) is None
    assert convert_reason({"amount": 1}, {"amount": 1, "steps": [2, 1]}) is not None


def test_unconvertible_default_compares_as_written():
    tool = {"name": "f", "parameters": {"n": {"type": "int, optional", "default": "many"}}}
    assert call_matches(call("f", n="many"), call("f"), tool, False) is None
    assert call_matches(call("f", n=3), call("f"), tool, False) is not None


def test_unknown_type_falls_back_to_plain_equality():
    assert convert_reason({"amount": 1, "extra": "x"}, {"amount": 1, "extra": "x"}) is None
    reason = convert_reason({"amount": 1, "extra": "y"}, {"amount": 1, "extra": "x"})
    assert reason == "argument 'extra' = 'y', expected 'x'"


@pytest.mark.parametrize(
    "declared, kind, item_kind",
    [
        ("str", "str", None),
        ("int, optional", "int", None),
        ("float", "float", None),
        ("bool, optional", "bool", None),
        ("List[int]", "list", "int"),
        ("List[str], optional", "list", "str"),
        ("list", "list", None),
        ("Dict[str, Any]", "dict", None),
        ("Dict[str, List[int]]", "dict", "list"),
        ("dict", "dict", None),
        ("Optional[int]", "int", None),
    ],
)
def test_xlam_type_strings_parse(declared, kind, item_kind):
    spec = parse_type(declared)
    assert spec.kind == kind
    assert (spec.item.kind if spec.item else None) == item_kind


@pytest.mark.parametrize("declared", ["Callable", "Union[int, float]", "Any", None, "Tuple[int, int]"])
def test_unknown_type_strings_parse_to_none(declared):
    assert parse_type(declared) is None


# ---------------------------------------------------------------- rows, categories and the report


def test_categories_come_from_the_gold_row():
    oslo, utc = call("get_weather", city="Oslo"), call("get_time", zone="UTC")
    assert score_row(row([oslo]), completion(oslo)).category == "simple"
    assert score_row(row([oslo], [WEATHER, TIME]), completion(oslo)).category == "multiple"
    assert score_row(row([oslo, oslo], [WEATHER, TIME]), completion(oslo)).category == "parallel"
    assert score_row(row([oslo, utc], [WEATHER, TIME]), completion(oslo)).category == "parallel-multiple"


def test_name_accuracy_and_exact_match_differ_on_a_wrong_argument():
    gold = [row([call("get_weather", city="Oslo")], row_id=1), row([call("get_weather", city="Rome")], row_id=2)]
    predictions = {
        "1": completion(call("get_weather", city="Oslo")),
        "2": completion(call("get_weather", city="Paris")),
    }
    report = score(gold, predictions)
    assert (report["n"], report["parse_rate"], report["name_accuracy"], report["exact_match"]) == (2, 1.0, 1.0, 0.5)
    assert report["per_row"][1] == {
        "id": 2,
        "category": "simple",
        "correct": False,
        "reason": "call 1 get_weather: argument 'city' = 'Paris', expected str 'Rome'",
    }


def test_report_groups_by_category_and_counts_missing_predictions():
    oslo, utc = call("get_weather", city="Oslo"), call("get_time", zone="UTC")
    gold = [row([oslo], row_id=1), row([oslo, utc], [WEATHER, TIME], row_id=2), row([oslo], row_id=3)]
    report = score(gold, {1: completion(oslo), "2": completion(utc, oslo)})
    assert report["missing_predictions"] == 1
    assert report["per_row"][2]["reason"] == "no prediction"
    assert report["by_category"] == {
        "simple": {"n": 2, "parse_rate": 0.5, "name_accuracy": 0.5, "exact_match": 0.5},
        "parallel-multiple": {"n": 1, "parse_rate": 1.0, "name_accuracy": 1.0, "exact_match": 1.0},
    }
    table = markdown_table(report)
    assert "| all | 3 | 66.7% | 66.7% | 66.7% |" in table
    assert "| parallel-multiple | 1 | 100.0% | 100.0% | 100.0% |" in table


def test_score_rejects_prediction_ids_outside_the_gold_set():
    with pytest.raises(ValueError, match="not in the gold set: 99"):
        score([row([call("get_weather", city="Oslo")])], {99: "</calls>"})


# ---------------------------------------------------------------- the command line


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def gold_record(row_id: int, tools: list[dict], answers: list[dict]) -> dict:
    return {"id": row_id, "query": "q", "tools": json.dumps(tools), "answers": json.dumps(answers)}


@pytest.fixture
def gold_file(tmp_path: Path) -> Path:
    oslo, utc = call("get_weather", city="Oslo"), call("get_time", zone="UTC")
    return write_jsonl(
        tmp_path / "gold.jsonl",
        [
            gold_record(1, [WEATHER], [oslo]),
            gold_record(2, [WEATHER, TIME], [oslo, utc]),
            gold_record(3, [WEATHER], [oslo]),
        ],
    )


def test_cli_writes_report_and_table(tmp_path, gold_file, capsys):
    predictions = write_jsonl(
        tmp_path / "pred.jsonl",
        [
            {"id": 1, "completion": completion(call("get_weather", city="Oslo"))},
            {"id": "2", "completion": completion(call("get_time", zone="UTC"), call("get_weather", city="Rome"))},
        ],
    )
    out = tmp_path / "eval" / "REPORT.json"
    assert main(["--gold", str(gold_file), "--predictions", str(predictions), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert (report["gold"], report["predictions"]) == (str(gold_file), str(predictions))
    assert (report["n"], report["missing_predictions"], report["exact_match"]) == (3, 1, 1 / 3)
    assert [r["reason"] for r in report["per_row"]] == [
        "ok",
        "call 2 get_weather: argument 'city' = 'Rome', expected str 'Oslo'",
        "no prediction",
    ]
    table = (tmp_path / "eval" / "REPORT.md").read_text()
    assert table == markdown_table(report)
    assert table in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == ["REPORT.json", "REPORT.md"]  # no temp files left


def test_cli_lenient_strings_flag(tmp_path, gold_file):
    lower_case = completion(call("get_weather", city="oslo"))
    predictions = write_jsonl(tmp_path / "pred.jsonl", [{"id": 1, "completion": lower_case}])
    out = tmp_path / "report.json"
    main(["--gold", str(gold_file), "--predictions", str(predictions), "--out", str(out)])
    assert json.loads(out.read_text())["per_row"][0]["correct"] is False
    main(["--gold", str(gold_file), "--predictions", str(predictions), "--out", str(out), "--lenient-strings"])
    report = json.loads(out.read_text())
    assert (report["per_row"][0]["correct"], report["lenient_strings"]) == (True, True)


def test_cli_unknown_prediction_id_names_file_line_and_id(tmp_path, gold_file, capsys):
    predictions = write_jsonl(
        tmp_path / "pred.jsonl",
        [{"id": 1, "completion": "</calls>"}, {"id": "abc-7", "completion": "</calls>"}],
    )
    out = tmp_path / "report.json"
    assert main(["--gold", str(gold_file), "--predictions", str(predictions), "--out", str(out)]) == 2
    assert f"{predictions}:2: prediction id 'abc-7' is not in the gold set" in capsys.readouterr().err
    assert not out.exists()


def test_cli_rejects_a_prediction_without_completion(tmp_path, gold_file, capsys):
    predictions = write_jsonl(tmp_path / "pred.jsonl", [{"id": 1, "text": "</calls>"}])
    assert main(["--gold", str(gold_file), "--predictions", str(predictions), "--out", str(tmp_path / "r.json")]) == 2
    assert f"{predictions}:1: prediction id 1 needs a string 'completion'" in capsys.readouterr().err


def test_help_has_a_usage_line(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert capsys.readouterr().out.startswith("usage: fcdist score --gold GOLD --predictions PRED.jsonl")


MOVIE_TOOL = {"name": "movie_details", "parameters": {  # as real row 51595 declares it
    "movie_id": {"description": "The YTS ID of the movie. Defaults to 10.", "type": "int, optional", "default": "10"},
    "imdb_id": {"description": "The IMDB ID of the movie in YTS.", "type": "int, optional", "default": "10"},
    "with_cast": {"description": "Include the cast.", "type": "bool, optional", "default": "false"}}}


@pytest.mark.parametrize("movie_id", [10, "10"])
def test_a_default_matches_as_written_and_as_its_declared_type(movie_id):
    gold = {"name": "movie_details", "arguments": {"imdb_id": "tt1375666", "with_cast": True}}
    assert call_matches({**gold, "arguments": {**gold["arguments"], "movie_id": movie_id}}, gold, MOVIE_TOOL) is None
    assert call_matches({**gold, "arguments": {**gold["arguments"], "with_cast": True, "movie_id": "11"}}, gold,
                        MOVIE_TOOL) == ("argument 'movie_id' = '11' given, but the expected call leaves it at its default "
                                        "'10' (10 as int)")


def test_a_gold_value_breaking_its_declared_type_matches_itself_and_its_exact_declared_form():
    tool = {"name": "f", "parameters": {"user_id": {"type": "str"}, "lat": {"type": "int"}, "zip": {"type": "int"}}}
    gold = {"name": "f", "arguments": {"user_id": 12345, "lat": 53.48, "zip": "01234"}}
    assert call_matches(gold, gold, tool) is None
    assert call_matches({"name": "f", "arguments": {**gold["arguments"], "user_id": "12345"}}, gold, tool) is None
    assert call_matches({"name": "f", "arguments": {**gold["arguments"], "zip": 1234}}, gold, tool) is not None, "not exact"
    assert call_matches({"name": "f", "arguments": {**gold["arguments"], "lat": 53}}, gold, tool) is not None


def _gold_completions(rows) -> dict:
    from fcdist.data.render import render_completion

    return {row.id: render_completion(row.answers) for row in rows}


def test_gold_answers_score_perfectly_on_synth_rows_and_the_real_sample(real_rows_file):
    from fcdist.data.synth import generate_rows
    from fcdist.data.xlam import parse_row, read_rows

    synth = [parse_row(raw, "synth") for raw in generate_rows(3000, seed=2)]
    real, skipped = read_rows(str(real_rows_file), on_bad_row="skip")
    assert sorted(skipped.examples.values()) == [4565, 22853], "the real rows that repeat a tool name"
    for rows in (synth, real):
        report = score(rows, _gold_completions(rows))
        assert report["exact_match"] == 1.0, [r for r in report["per_row"] if not r["correct"]][:3]
