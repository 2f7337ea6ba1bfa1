"""Tests for ``fcdist score --rules bfcl`` and gold rows' ``acceptable`` and ``category``: one test per BFCL rule
on hand-written fixtures, and one per difference from ``--rules fcdist``, each asserting both modes' verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fcdist.data.render import render_seed
from fcdist.data.xlam import BadRowError, parse_row, parse_rows, read_rows
from fcdist.score import main, score, score_row
from fcdist.score.bfcl_rules import bfcl_type
from fcdist.score.report import markdown_table

HOTEL = {
    "name": "find_hotel",
    "description": "Hotels in a city.",
    "parameters": {
        "city": {"type": "str", "description": "City name."},
        "nights": {"type": "int", "description": "Nights."},
        "budget": {"type": "float", "description": "Budget per night."},
        "units": {"type": "str, optional", "description": "Currency.", "default": "USD"},
        "note": {"type": "str, optional", "description": "A note for the hotel."},
        "rates": {"type": "List[float], optional", "description": "Acceptable rates."},
        "tags": {"type": "List[str], optional", "description": "Wanted features."},
        "guest": {"type": "Dict[str, Any], optional", "description": "Guest details."},
    },
}
TAXI = {"name": "book_taxi", "description": "A taxi.", "parameters": {"to": {"type": "str", "description": "Where."}}}
OSLO = {"city": "Oslo", "nights": 2, "budget": 120.0}


def call(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def gold(answers: list[dict], tools: list[dict] | None = None, acceptable: list | None = None,
         category: str | None = None, row_id: int = 1):
    raw = {"id": row_id, "query": "q", "tools": json.dumps(tools or [HOTEL]), "answers": json.dumps(answers)}
    if acceptable is not None:
        raw["acceptable"] = json.dumps(acceptable)
    if category is not None:
        raw["category"] = category
    return parse_row(raw, "gold.jsonl")


def completion(*calls: dict) -> str:
    return "\n".join(json.dumps(c) for c in calls) + "</calls>"


def verdicts(row, *calls: dict, text: str | None = None) -> tuple[bool, bool]:
    """(--rules fcdist, --rules bfcl) for one completion."""
    text = completion(*calls) if text is None else text
    return score_row(row, text).correct, score_row(row, text, rules="bfcl").correct


def hotel(**changes) -> dict:
    arguments = {**OSLO, **changes}
    return call("find_hotel", **{k: v for k, v in arguments.items() if v is not None})


# ---------------------------------------------------------------- BFCL's rules


def test_the_right_call_is_correct_in_both_modes():
    assert verdicts(gold([hotel()]), hotel()) == (True, True)


def test_bfcl_normalises_strings_case_spaces_and_punctuation_fcdist_only_when_lenient():
    row = gold([hotel(city="New York")])
    for written in ("new york", "NewYork", "new-york.", "New_York*"):
        assert verdicts(row, hotel(city=written)) == (False, True)
        assert score_row(row, completion(hotel(city=written)), lenient_strings=True).correct
    assert verdicts(row, hotel(city="Newark")) == (False, False)


def test_bfcl_normalises_strings_inside_lists_and_dict_values_the_lenient_mode_not_inside_dicts():
    row = gold([hotel(tags=["Sea View"], guest={"name": "Ann Lee"})])
    text = completion(hotel(tags=["sea-view"], guest={"name": "ann lee"}))
    assert score_row(row, text, rules="bfcl").correct
    lenient = score_row(row, text, lenient_strings=True)
    assert not lenient.correct and "guest" in lenient.reason  # the list passed, the dict value did not


def test_an_int_stands_for_a_float_in_both_modes_but_a_float_not_for_an_int():
    row = gold([hotel()])
    assert verdicts(row, hotel(budget=120)) == (True, True)
    assert verdicts(row, hotel(nights=2.0)) == (False, False)


@pytest.mark.parametrize("wrong", [{"nights": "2"}, {"nights": True}, {"budget": "120"}, {"city": 7}])
def test_a_value_of_another_type_is_wrong_in_both_modes(wrong):
    assert verdicts(gold([hotel()]), hotel(**wrong)) == (False, False)


def test_required_comes_from_the_function_doc():
    """BFCL refuses a call without a required parameter even where the gold says it may be left out."""
    row = gold([hotel()], acceptable=[{"may_omit": ["nights"]}])
    assert verdicts(row, hotel(nights=None)) == (True, False)


def test_may_omit_lets_an_optional_argument_be_left_out_in_both_modes():
    row = gold([hotel(units="EUR")], acceptable=[{"may_omit": ["units"]}])
    assert verdicts(row, hotel()) == (True, True)
    assert verdicts(row, hotel(units="EUR")) == (True, True)
    assert verdicts(row, hotel(units="GBP")) == (False, False)
    assert verdicts(gold([hotel(units="EUR")]), hotel()) == (False, False)  # without may_omit it is needed


def test_alternatives_accept_every_listed_value_in_both_modes():
    row = gold([hotel(city="NYC")], acceptable=[{"values": {"city": ["New York City", "Manhattan"]}}])
    for city in ("NYC", "New York City", "Manhattan"):
        assert verdicts(row, hotel(city=city)) == (True, True)
    assert verdicts(row, hotel(city="Boston")) == (False, False)


def test_an_argument_the_gold_does_not_name_is_unexpected_in_both_modes():
    assert verdicts(gold([hotel()]), hotel(note="late arrival")) == (False, False)
    assert verdicts(gold([hotel()]), hotel(breakfast=True)) == (False, False)


def test_wrong_function_and_wrong_call_count_are_wrong_in_both_modes():
    row = gold([hotel()], tools=[HOTEL, TAXI])
    assert verdicts(row, call("book_taxi", to="Oslo")) == (False, False)
    assert verdicts(row, hotel(), hotel()) == (False, False)
    assert verdicts(row) == (False, False)


def test_parallel_calls_match_in_any_order_each_gold_call_once():
    row = gold([hotel(), hotel(city="Rome")])
    assert verdicts(row, hotel(city="Rome"), hotel()) == (True, True)
    assert verdicts(row, hotel(), hotel()) == (False, False)  # one predicted call cannot stand for both


def test_irrelevance_is_correct_when_no_call_is_made():
    row = gold([], category="irrelevance")
    assert verdicts(row, text="") == (True, True)
    assert verdicts(row, text="</calls>") == (True, True)
    assert verdicts(row, hotel()) == (False, False)


def test_bfcl_types_are_read_from_xlams_type_strings():
    assert bfcl_type("List[float], optional") == ("array", "float")
    assert bfcl_type("Optional[int]") == ("integer", None)
    assert bfcl_type("Tuple[int, int]") == ("tuple", "integer")
    assert bfcl_type("Dict[str, Any]") == ("dict", None)
    assert bfcl_type("Callable") == ("any", None)


# ---------------------------------------------------------------- where fcdist's own rules differ


def test_difference_an_int_inside_a_list_of_floats():
    row = gold([hotel(rates=[100.0, 150.5])])
    assert verdicts(row, hotel(rates=[100, 150.5])) == (True, False)


def test_difference_parallel_pairing_one_to_one_against_first_fit():
    """Gold call 1 accepts Oslo or Rome, gold call 2 only Oslo: BFCL's first-fit gives Oslo to call 1 and
    finds nothing for call 2; fcdist pairs Rome with call 1 and Oslo with call 2."""
    row = gold([hotel(), hotel()], acceptable=[{"values": {"city": ["Oslo", "Rome"]}}, {}])
    assert verdicts(row, hotel(), hotel(city="Rome")) == (True, False)
    assert verdicts(row, hotel(city="Rome"), hotel()) == (True, True)


def test_difference_an_empty_string_for_an_optional_string():
    row = gold([hotel(note="quiet room")], acceptable=[{"may_omit": ["note"]}])
    assert verdicts(row, hotel(note="")) == (False, True)


def test_difference_an_empty_list_for_an_optional_list():
    row = gold([hotel(tags=["pool"])], acceptable=[{"may_omit": ["tags"]}])
    assert verdicts(row, hotel(tags=[])) == (False, True)
    assert verdicts(row, hotel(tags=["gym"])) == (False, False)


def test_difference_an_argument_given_at_its_declared_default():
    assert verdicts(gold([hotel()]), hotel(units="USD")) == (True, False)  # the gold leaves it out
    assert verdicts(gold([hotel(units="USD")]), hotel()) == (True, False)  # the gold gives it


def test_difference_an_unreadable_completion_when_no_call_is_expected():
    row = gold([], category="irrelevance")
    assert verdicts(row, text="Sorry, I cannot book that.") == (False, True)


def test_difference_strings_in_dict_values():
    row = gold([hotel(guest={"name": "Ann Lee"})])
    text = completion(hotel(guest={"name": "ann lee"}))
    assert (score_row(row, text, lenient_strings=True).correct, score_row(row, text, rules="bfcl").correct) == (False, True)


# ---------------------------------------------------------------- the gold row's fields


@pytest.mark.parametrize(
    "acceptable, category, reason",
    [
        ({"values": {}}, None, "'acceptable' must be a JSON string, got dict"),
        ("not json", None, "'acceptable' is not valid JSON (Expecting value at char 0)"),
        ([], None, "'acceptable' has 0 element(s), 'answers' 1: one per call"),
        ([{"values": {"city": "Rome"}}], None, "'acceptable'[0]['values'] must map each argument to a non-empty list of values"),
        ([{"values": {"units": ["EUR"]}}], None, "'acceptable'[0] lists values for 'units', which the answer does not give"),
        ([{"may_omit": ["stars"]}], None, "'acceptable'[0] names 'stars', which is not a parameter of find_hotel"),
        ([{"may_omit": "units"}], None, "'acceptable'[0]['may_omit'] must be a list of argument names"),
        ([{"optional": ["units"]}], None, "'acceptable'[0] must be a dict with only 'values' and 'may_omit'"),
        (None, "irrelevance", "'category' 'irrelevance' needs no call(s) in 'answers', which holds 1"),
        (None, 3, "'category' must be a non-empty string, got 3"),
    ],
)
def test_a_malformed_acceptable_or_category_names_the_file_row_and_what_is_wrong(acceptable, category, reason):
    raw = {"id": "h7", "query": "q", "tools": json.dumps([HOTEL]), "answers": json.dumps([hotel()]),
           "acceptable": acceptable if isinstance(acceptable, (str, dict)) or acceptable is None else json.dumps(acceptable),
           "category": category}
    with pytest.raises(BadRowError) as info:
        parse_row(raw, "gold.jsonl")
    assert str(info.value) == f"gold.jsonl: row id='h7': {reason}"
    rows, skipped = parse_rows([raw], "gold.jsonl", on_bad_row="skip")
    assert (rows, skipped.skipped, list(skipped.reasons)) == ([], 1, [reason])


def test_rows_with_and_without_the_new_fields_read_from_one_jsonl_file_and_render_alike(tmp_path):
    plain = {"id": 1, "query": "q", "tools": json.dumps([HOTEL]), "answers": json.dumps([hotel()])}
    widened = {**plain, "id": 2, "acceptable": json.dumps([{"may_omit": ["units"]}]), "category": "simple"}
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps(plain) + "\n" + json.dumps(widened) + "\n")
    first, second = read_rows(str(path))[0]
    assert (first.acceptable, first.category) == (None, None)
    assert (second.acceptable[0].may_omit, second.category) == ({"units"}, "simple")
    assert render_seed(first.query, first.tools, first.answers) == render_seed(second.query, second.tools, second.answers)


# ---------------------------------------------------------------- the report


def leaderboard_rows():
    rows = [
        gold([hotel()], category="simple", row_id=1),
        gold([hotel()], category="simple", row_id=2),
        gold([call("book_taxi", to="Oslo")], tools=[HOTEL, TAXI], category="multiple", row_id=3),
        gold([hotel(), hotel(city="Rome")], category="parallel", row_id=4),
        gold([hotel(), call("book_taxi", to="Oslo")], tools=[HOTEL, TAXI], category="parallel_multiple", row_id=5),
        gold([], category="irrelevance", row_id=6),
    ]
    predictions = {1: completion(hotel(city="oslo")), 2: completion(hotel(city="Rome")),
                   3: completion(call("book_taxi", to="OSLO")), 4: completion(hotel(city="Rome"), hotel()),
                   6: "No tool fits."}  # 5 has no prediction
    return rows, predictions


def test_the_report_counts_cases_and_lays_out_the_leaderboards_ast_columns():
    rows, predictions = leaderboard_rows()
    report = score(rows, predictions, rules="bfcl", skipped=2)
    assert (report["cases_read"], report["cases_scored"], report["missing_predictions"]) == (8, 5, 1)
    assert list(report["by_category"]) == ["simple", "multiple", "parallel", "parallel_multiple", "irrelevance"]
    board = report["leaderboard"]
    assert (board["Simple"], board["Multiple"], board["Parallel"], board["Parallel Multiple"]) == (0.5, 1.0, 1.0, 0.0)
    assert board["AST summary"] == pytest.approx((0.5 + 1 + 1 + 0) / 4)  # unweighted, irrelevance beside it
    assert board["Irrelevance"] == 1.0
    table = markdown_table(report)
    assert "5 of 8 cases read had a prediction (bfcl rules)" in table
    assert "| AST summary | Simple | Multiple | Parallel | Parallel Multiple | Irrelevance |" in table
    assert "| 62.50% | 50.00% | 100.00% | 100.00% | 0.00% | 100.00% |" in table


def test_the_summary_is_not_available_while_an_ast_category_has_no_rows():
    rows, predictions = leaderboard_rows()
    board = score(rows[:2], {1: predictions[1]}, rules="bfcl")["leaderboard"]
    assert (board["AST summary"], board["Simple"], board["Multiple"]) == (None, 0.5, None)
    assert "| N/A | 50.00% | N/A | N/A | N/A | N/A |" in markdown_table(score(rows[:2], {1: predictions[1]}, rules="bfcl"))


def test_cli_rules_bfcl_writes_the_report_and_refuses_lenient_strings(tmp_path: Path, capsys):
    rows, predictions = leaderboard_rows()
    gold_path, pred_path, out = tmp_path / "gold.jsonl", tmp_path / "pred.jsonl", tmp_path / "report.json"
    gold_path.write_text(json.dumps({"id": 1, "query": "q", "tools": json.dumps([HOTEL]), "answers": json.dumps([hotel()]),
                                     "category": "simple"}) + "\n")
    pred_path.write_text(json.dumps({"id": 1, "completion": predictions[1]}) + "\n")
    args = ["--gold", str(gold_path), "--predictions", str(pred_path), "--out", str(out)]
    assert main(args + ["--rules", "bfcl"]) == 0
    report = json.loads(out.read_text())
    assert (report["rules"], report["exact_match"], report["leaderboard"]["Simple"]) == ("bfcl", 1.0, 1.0)
    assert main(args) == 0 and json.loads(out.read_text())["exact_match"] == 0.0  # fcdist: "oslo" is not "Oslo"
    with pytest.raises(SystemExit):
        main(args + ["--rules", "bfcl", "--lenient-strings"])
    assert "--lenient-strings is for --rules fcdist" in capsys.readouterr().err
