"""Rendering is the seed notebook's format byte for byte."""

import json

from fcdist.data.render import render_prompt, render_seed, render_text

# The first row of xlam-function-calling-60k, as the dataset card shows it.
SEED_ROW = {
    "id": 0,
    "query": "Where can I find live giveaways for beta access and games?",
    "tools": json.dumps([{
        "name": "live_giveaways_by_type",
        "description": "Retrieve live giveaways from the GamerPower API based on the specified type.",
        "parameters": {"type": {"description": "The type of giveaways to retrieve (e.g., game, loot, beta).", "type": "str", "default": "game"}},
    }]),
    "answers": json.dumps([
        {"name": "live_giveaways_by_type", "arguments": {"type": "beta"}},
        {"name": "live_giveaways_by_type", "arguments": {"type": "game"}},
    ]),
}

# Written out by hand from the seed's f-string, not computed: Python reprs with single quotes.
SEED_TEXT = (
    "<user>Where can I find live giveaways for beta access and games?</user>\n\n"
    "<tools>{'name': 'live_giveaways_by_type', 'description': 'Retrieve live giveaways from the GamerPower API "
    "based on the specified type.', 'parameters': {'type': {'description': 'The type of giveaways to retrieve "
    "(e.g., game, loot, beta).', 'type': 'str', 'default': 'game'}}}</tools>\n\n"
    "<calls>{'name': 'live_giveaways_by_type', 'arguments': {'type': 'beta'}}\n"
    "{'name': 'live_giveaways_by_type', 'arguments': {'type': 'game'}}</calls>"
)


def decoded(row):
    return row["query"], json.loads(row["tools"]), json.loads(row["answers"])


def test_seed_row_renders_byte_for_byte():
    assert render_text(*decoded(SEED_ROW)) == SEED_TEXT


def test_several_tools_one_per_line():
    tools = [{"name": "a", "parameters": {}}, {"name": "b", "parameters": {"x": {"type": "int"}}}]
    prompt = render_prompt("q", tools)
    assert prompt == "<user>q</user>\n\n<tools>{'name': 'a', 'parameters': {}}\n{'name': 'b', 'parameters': {'x': {'type': 'int'}}}</tools>\n\n<calls>"


def test_prompt_ends_with_calls_and_completion_is_the_rest():
    rendered = render_seed(*decoded(SEED_ROW))
    assert rendered.prompt.endswith("<calls>")
    assert rendered.prompt + rendered.completion == SEED_TEXT
    assert rendered.completion.endswith("</calls>")


def test_render_cli_writes_split_and_fields(tmp_path):
    from fcdist.data.render import main
    from fcdist.data.xlam import is_heldout

    data = tmp_path / "rows.jsonl"
    rows = [dict(SEED_ROW, id=i) for i in range(50)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    assert main(["--data", str(data), "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == list(range(50))
    assert records[0]["text"] == SEED_TEXT
    assert all(r["prompt"] + r["completion"] == r["text"] for r in records)
    assert [r["split"] for r in records] == ["heldout" if is_heldout(i, 0.02) else "train" for i in range(50)]
