"""BFCL files -> fcdist gold rows (fcdist/data/bfcl.py) on hand-written BFCL-format fixtures
(tests/fixtures/bfcl/): every category, the tools a model trained on xlam reads, the answers and their
acceptable alternatives, and bad input that stops with the file, line and id or is counted as a skip."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fcdist.data.bfcl import category_files, read_folder
from fcdist.data.render import render_prompt
from fcdist.data.xlam import BadRowError, parse_row
from fcdist.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "bfcl"


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    """The gold rows by id, their acceptable values decoded (a JSON string, like tools and answers)."""
    return {row["id"]: {**row, "acceptable": json.loads(row["acceptable"])} for row in read_folder(FIXTURES)[0]}


@pytest.fixture
def folder(tmp_path) -> Path:
    """A copy of the fixtures to spoil."""
    return Path(shutil.copytree(FIXTURES, tmp_path / "bfcl"))


def tools_of(row: dict) -> dict[str, dict]:
    return {tool["name"]: tool for tool in json.loads(row["tools"])}


def edit_line(path: Path, number: int, edit) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")


def test_every_category_is_read_and_counted():
    rows, conversion = read_folder(FIXTURES)
    assert [row["category"] for row in rows] == ["simple"] * 2 + ["multiple"] * 2 + ["parallel"] * 2 + \
        ["parallel_multiple"] * 2 + ["irrelevance"] * 2
    summary = conversion.summary()
    assert summary["by_category"]["simple"] == {"read": 2, "converted": 2}
    assert (summary["read"], summary["converted"], summary["skipped"]) == (10, 10, 0)
    assert [row["category"] for row in read_folder(FIXTURES, ["parallel", "irrelevance"])[0]] == \
        ["parallel"] * 2 + ["irrelevance"] * 2


def test_function_docs_become_the_xlam_tools_training_saw(rows):
    calories = tools_of(rows["simple_python_0"])["nutrition.calories"]["parameters"]
    assert calories["food"] == {"description": "The food's name.", "type": "str"}
    assert calories["grams"]["type"] == "int"
    # not required: ", optional", as xlam writes it; enum: in the description, where xlam states allowed values
    assert calories["unit"] == {"description": "Energy unit. Options are 'kcal', 'kJ'.", "type": "str, optional",
                                "default": "kcal"}
    plot = tools_of(rows["multiple_0"])
    assert plot["plot.points"]["parameters"]["points"]["type"] == "List[Tuple[int, ...]]"
    assert plot["plot.line"]["parameters"]["start"]["type"] == "Tuple[int, ...]"
    save = tools_of(rows["multiple_1"])["settings.save"]["parameters"]
    assert (save["settings"]["type"], save["note"]["type"]) == ("Dict[str, Any]", "Any, optional")
    assert tools_of(rows["parallel_multiple_1"])["stats.mean"]["parameters"]["numbers"]["type"] == "List[float]"
    assert tools_of(rows["parallel_0"])["weather.now"]["parameters"]["metric"]["type"] == "bool, optional"


def test_each_row_is_a_valid_xlam_row_rendered_like_training(rows):
    for raw in read_folder(FIXTURES)[0]:
        row = parse_row(raw, "gold")
        prompt = render_prompt(row.query, row.tools)
        assert prompt.startswith(f"<user>{row.query}</user>") and str(row.tools[0]) in prompt


def test_a_system_message_comes_first_in_the_query(rows):
    assert rows["simple_python_1"]["query"] == ("Answer for a user in Norway.\n\n"
                                                "Convert 12.5 miles to kilometres, rounded to 2 digits.")


def test_answers_take_the_first_acceptable_value_and_keep_every_alternative(rows):
    simple = rows["simple_python_0"]
    # BFCL: {"food": ["oats", "Oats"], "grams": [250], "unit": ["", "kcal"]}
    assert json.loads(simple["answers"]) == [{"name": "nutrition.calories",
                                              "arguments": {"food": "oats", "grams": 250, "unit": "kcal"}}]
    assert simple["acceptable"] == [{"values": {"food": ["oats", "Oats"], "grams": [250], "unit": ["kcal"]},
                                     "may_omit": ["unit"]}]
    # an argument whose only value is "" is left out of the answer and may be omitted
    settings = rows["multiple_1"]
    assert json.loads(settings["answers"])[0]["arguments"] == {"user_id": 7, "settings": {"theme": "dark", "size": 14}}
    assert settings["acceptable"][0]["may_omit"] == ["note"] and "note" not in settings["acceptable"][0]["values"]
    # a dict argument's {key: [values]} ("" = the key may be missing) becomes every whole dict it accepts
    assert settings["acceptable"][0]["values"]["settings"] == [
        {"theme": "dark", "size": 14}, {"theme": "dark"}, {"theme": "dark", "size": ""},
        {"theme": "black", "size": 14}, {"theme": "black"}, {"theme": "black", "size": ""}]  # "" itself passes BFCL
    taxi = rows["parallel_multiple_0"]
    assert json.loads(taxi["answers"])[1] == {"name": "taxi.call", "arguments": {"destination": "restaurant", "seats": 4}}
    assert taxi["acceptable"][1]["may_omit"] == ["seats"]
    assert len(rows["parallel_1"]["acceptable"]) == len(json.loads(rows["parallel_1"]["answers"])) == 3
    # an argument the function doc does not declare, which may be left out: left out
    assert json.loads(rows["parallel_1"]["answers"])[0]["arguments"] == {"radius": 2.0}
    assert rows["parallel_1"]["acceptable"][0] == {"values": {"radius": [2.0]}, "may_omit": []}


def test_irrelevance_cases_have_no_answer(rows):
    assert (rows["irrelevance_0"]["answers"], rows["irrelevance_0"]["acceptable"]) == ("[]", [])


def test_v3_file_names_are_read_and_a_category_given_twice_is_refused(folder):
    (folder / "BFCL_v4_parallel.json").rename(folder / "BFCL_v3_parallel.json")
    (folder / "possible_answer" / "BFCL_v4_parallel.json").rename(folder / "possible_answer" / "BFCL_v3_parallel.json")
    shutil.copy(folder / "BFCL_v4_simple_python.json", folder / "BFCL_v3_simple.json")
    (folder / "BFCL_v4_live_simple.json").write_text("not read: not a Python AST category\n")
    with pytest.raises(InputError, match="two files for category simple: BFCL_v3_simple.json and BFCL_v4_simple_python.json"):
        category_files(folder)
    (folder / "BFCL_v3_simple.json").unlink()
    assert category_files(folder)["parallel"].name == "BFCL_v3_parallel.json"
    assert list(category_files(folder)) == ["simple", "multiple", "parallel", "parallel_multiple", "irrelevance"]


@pytest.mark.parametrize("categories, message", [
    (["simple", "live_simple"], "unknown BFCL category live_simple"),
    (["simple", "irrelevance"], "no BFCL question file for irrelevance"),
])
def test_a_category_not_there_is_refused(folder, categories, message):
    (folder / "BFCL_v4_irrelevance.json").unlink()
    with pytest.raises(InputError, match=message):
        read_folder(folder, categories)


def test_a_question_without_a_possible_answer_stops_naming_file_line_and_id_or_is_counted(folder):
    answers = folder / "possible_answer" / "BFCL_v4_parallel.json"
    answers.write_text(answers.read_text().splitlines()[0] + "\n")  # parallel_1's answer is gone
    with pytest.raises(BadRowError) as error:
        read_folder(folder)
    assert str(error.value) == (f"{folder}/BFCL_v4_parallel.json:2: row id='parallel_1': "
                                "no possible answer with this id in possible_answer/")
    rows, conversion = read_folder(folder, on_bad_row="skip")
    summary = conversion.summary()
    assert summary["by_category"]["parallel"] == {"read": 2, "converted": 1}  # the denominator stays 2
    assert (summary["read"], summary["converted"], summary["skipped"]) == (10, 9, 1)
    assert "parallel_1" not in {row["id"] for row in rows}


def test_an_unknown_type_stops_naming_file_line_id_and_argument(folder):
    edit_line(folder / "BFCL_v4_multiple.json", 2, lambda line: line.replace('"type": "any"', '"type": "HashMap"'))
    with pytest.raises(BadRowError, match=r"BFCL_v4_multiple.json:2: row id='multiple_1': argument 'settings.save.note' "
                                          r"has the unknown type 'HashMap'"):
        read_folder(folder)
    assert read_folder(folder, on_bad_row="skip")[1].summary()["by_category"]["multiple"] == {"read": 2, "converted": 1}


def test_a_malformed_line_stops_naming_file_and_line_or_is_counted(folder):
    edit_line(folder / "BFCL_v4_simple_python.json", 1, lambda line: line[:40])
    with pytest.raises(BadRowError, match=r"BFCL_v4_simple_python.json:1: row id=None: not a JSON object with an 'id'"):
        read_folder(folder)
    rows, conversion = read_folder(folder, on_bad_row="skip")
    assert conversion.summary()["by_category"]["simple"] == {"read": 2, "converted": 1}
    assert conversion.skips.reasons == {"not a JSON object with an 'id'": 1}


def test_an_answer_calling_a_function_the_case_does_not_offer_is_refused(folder):
    edit_line(folder / "possible_answer" / "BFCL_v4_parallel.json", 2, lambda line: line.replace("circle.area", "circle.size"))
    with pytest.raises(BadRowError, match=r"row id='parallel_1': 'answers'\[0\] calls 'circle.size', which is not among"):
        read_folder(folder)


def test_the_command_reports_bad_input_in_one_line(folder, tmp_path):
    edit_line(folder / "BFCL_v4_multiple.json", 2, lambda line: line.replace('"type": "any"', '"type": "HashMap"'))
    proc = subprocess.run([sys.executable, "-m", "fcdist.cli", "eval", "bfcl", "--convert-only", "--bfcl", str(folder),
                           "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("fcdist eval bfcl: error: ")
    assert "BFCL_v4_multiple.json:2: row id='multiple_1'" in proc.stderr and not (tmp_path / "out" / "gold.jsonl").exists()
    skipped = subprocess.run([sys.executable, "-m", "fcdist.cli", "eval", "bfcl", "--convert-only", "--bfcl", str(folder),
                              "--out", str(tmp_path / "out"), "data.on_bad_row=skip"], cwd=ROOT, capture_output=True, text=True)
    assert skipped.returncode == 0 and "9 of 10 BFCL cases converted" in skipped.stdout
    assert "1 x argument 'settings.save.note' has the unknown type 'HashMap'" in skipped.stderr
    assert json.loads((tmp_path / "out" / "conversion.json").read_text())["skipped"] == 1


def test_categories_are_comma_separated_so_overrides_after_them_stay_overrides(capsys):
    from fcdist.evaluate import build_parser

    args = build_parser().parse_args(["bfcl", "--model", "m", "--out", "o", "--categories", "simple,parallel",
                                      "infer.max_new_tokens=8"])
    assert args.categories == ["simple", "parallel"] and args.overrides == ["infer.max_new_tokens=8"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bfcl", "--model", "m", "--out", "o", "--categories", "simple,live_simple"])
    assert "'simple,live_simple': categories are simple,multiple" in capsys.readouterr().err
