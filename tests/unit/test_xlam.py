"""Row validation names the row and the reason; the held-out split depends on the id alone."""

import json

import pytest

from fcdist.data.xlam import BadRowError, heldout_score, is_heldout, parse_row, parse_rows, read_rows

TOOLS = json.dumps([{"name": "f", "description": "d", "parameters": {"x": {"type": "int", "description": "x"}}}])
GOOD = {"id": 7, "query": "call f with 3", "tools": TOOLS, "answers": json.dumps([{"name": "f", "arguments": {"x": 3}}])}

BAD_ROWS = [
    ({"id": 1, "query": "q", "tools": TOOLS}, "missing column(s) answers"),
    (dict(GOOD, id=2, tools="[{'name': 'f'}]"), "'tools' is not valid JSON"),
    (dict(GOOD, id=3, answers="{not json"), "'answers' is not valid JSON"),
    (dict(GOOD, id=4, tools=json.dumps({"name": "f"})), "'tools' must decode to a list"),
    (dict(GOOD, id=5, tools=json.dumps([{"description": "no name"}])), "'tools'[0] must be a dict with a string 'name'"),
    (dict(GOOD, id=6, tools=json.dumps([{"name": "f", "parameters": ["x"]}])), "'parameters' must be a dict"),
    (dict(GOOD, id=8, answers=json.dumps([{"name": "f", "arguments": "x=3"}])), "'arguments' must be a dict"),
    (dict(GOOD, id=9, answers=json.dumps([{"arguments": {}}])), "'answers'[0] must be a dict with a string 'name'"),
    (dict(GOOD, id=10, answers=json.dumps([{"name": "g", "arguments": {}}])), "calls 'g', which is not among the row's tools"),
    (dict(GOOD, id=11, query=5), "'query' must be a string"),
    (dict(GOOD, id=12, tools=json.dumps([{"name": "f"}, {"name": "g"}, {"name": "f"}])),
     "'tools'[2] repeats the tool name 'f' of 'tools'[0]"),
]


def test_good_row_parses():
    row = parse_row(GOOD, "mem")
    assert row.id == 7 and row.tools[0]["name"] == "f" and row.answers == [{"name": "f", "arguments": {"x": 3}}]


@pytest.mark.parametrize("raw, reason", BAD_ROWS, ids=lambda v: str(v)[:30])
def test_bad_row_error_names_source_row_and_reason(raw, reason):
    with pytest.raises(BadRowError) as info:
        parse_row(raw, "rows.jsonl")
    assert str(info.value).startswith(f"rows.jsonl: row id={raw['id']!r}: ")
    assert reason in info.value.reason


def test_error_policy_stops_at_first_bad_row():
    with pytest.raises(BadRowError, match="row id=10"):
        parse_rows([GOOD, BAD_ROWS[8][0], BAD_ROWS[0][0]], "mem", "error")


def test_skip_policy_counts_by_reason():
    raws = [GOOD] + [raw for raw, _ in BAD_ROWS] + [dict(GOOD, id=99)]
    rows, report = parse_rows(raws, "mem", "skip")
    assert [r.id for r in rows] == [7, 99]
    assert report.skipped == len(BAD_ROWS)
    assert "skipped 11 bad row(s)" in report.summary() and "not among the row's tools" in report.summary()


def test_heldout_split_is_a_pure_function_of_the_id():
    ids = list(range(20000))
    held = [i for i in ids if is_heldout(i, 0.1)]
    assert 0.09 < len(held) / len(ids) < 0.11
    assert held == [i for i in reversed(ids) if is_heldout(i, 0.1)][::-1]
    assert is_heldout("123", 0.1) == is_heldout(123, 0.1)  # ids from JSON and from Arrow agree
    assert all(is_heldout(i, 0.2) for i in held), "a larger fraction keeps every row already held out"
    assert 0.0 <= min(map(heldout_score, ids)) and max(map(heldout_score, ids)) < 1.0


def test_read_rows_from_jsonl_and_parquet(tmp_path):
    import datasets

    rows = [dict(GOOD, id=i) for i in range(5)]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "r.parquet"))
    for name in ("r.jsonl", "r.parquet"):
        parsed, report = read_rows(str(tmp_path / name))
        assert [r.id for r in parsed] == list(range(5)) and report.skipped == 0


def test_missing_file_and_missing_column_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.source: no such file"):
        read_rows(str(tmp_path / "none.jsonl"))
    (tmp_path / "cols.jsonl").write_text(json.dumps({"id": 1, "query": "q"}) + "\n")
    with pytest.raises(BadRowError, match="missing column"):
        read_rows(str(tmp_path / "cols.jsonl"))
