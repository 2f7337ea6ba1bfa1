"""data.template=chat on the real Phi-3 tokenizer and real xlam rows: the tools always reach the prompt, once,
and documents end with the template's own end of turn."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from fcdist.config import load_config
from fcdist.data.render import render_tools
from fcdist.data.xlam import parse_rows
from fcdist.preprocess.fingerprint import differing_keys, fingerprint_components
from fcdist.preprocess.tokenize import IGNORE_INDEX, render_row, tokenize_row, tokenize_rows

PHI3_END, PHI3_END_ID, PHI3_EOS_ID = "<|end|>", 32007, 32000

# A template that does render tools=: a system turn listing each tool's name and description.
TOOLS_TEMPLATE = (
    "{% if tools %}<|system|>\n{% for t in tools %}{{ t['name'] }}: {{ t['description'] }}\n{% endfor %}<|end|>\n{% endif %}"
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture
def phi3(phi3_tokenizer_dir):
    """A fresh Phi-3 tokenizer each test: some tests change its template."""
    return AutoTokenizer.from_pretrained(phi3_tokenizer_dir)


@pytest.fixture(scope="module")
def real_rows(real_rows_file):
    """The valid real rows: two of the 67 define a tool name twice and are refused by validation."""
    rows, skipped = parse_rows((json.loads(line) for line in real_rows_file.read_text().splitlines()),
                               str(real_rows_file), "skip")
    assert skipped.skipped == 2
    return rows


def loss_text(tokenizer, doc) -> str:
    return tokenizer.decode([token for token, label in zip(doc.input_ids, doc.labels) if label != IGNORE_INDEX])


def test_phi3_chat_prompt_holds_every_tool_and_the_turn_ends_with_end(phi3, real_rows):
    docs = tokenize_rows(real_rows, phi3, "chat", "completion")
    for row, doc in zip(real_rows, docs):
        rendered = render_row(row, "chat", phi3)
        assert rendered.prompt == (f"<|user|>\n{row.query}\n\n{render_tools(row.tools)}{PHI3_END}\n"
                                   "<|assistant|>\n<calls>"), row.id
        first_loss = next(i for i, label in enumerate(doc.labels) if label != IGNORE_INDEX)
        decoded_prompt = phi3.decode(doc.input_ids[:first_loss])
        assert all(str(tool) in decoded_prompt for tool in row.tools), row.id
        assert doc.input_ids[-1] == PHI3_END_ID and PHI3_EOS_ID not in doc.input_ids, row.id
        assert loss_text(phi3, doc) == rendered.completion + PHI3_END, row.id
        prompt_ids = phi3(rendered.prompt, add_special_tokens=False)["input_ids"]  # as inference tokenizes it
        assert doc.input_ids[:first_loss] == prompt_ids, row.id


def test_chat_documents_are_as_long_as_seed_ones_with_phi3(phi3, real_rows):
    """The tools are most of a row: a chat document that dropped them would be a quarter of the seed's."""
    chat = sum(len(doc.input_ids) for doc in tokenize_rows(real_rows, phi3, "chat", "completion"))
    seed = sum(len(doc.input_ids) for doc in tokenize_rows(real_rows, phi3, "seed", "completion"))
    assert 0.95 * seed < chat <= seed


def test_a_template_that_renders_tools_gets_them_once(phi3, real_rows):
    phi3.chat_template = TOOLS_TEMPLATE
    row = max(real_rows, key=lambda r: len(r.tools))
    prompt = render_row(row, "chat", phi3).prompt
    assert prompt.startswith("<|system|>\n") and prompt.endswith(f"{PHI3_END}\n<|assistant|>\n<calls>")
    for tool in row.tools:
        assert prompt.count(f"{tool['name']}: {tool['description']}\n") == 1 and str(tool) not in prompt
    assert "<tools>" not in prompt
    doc = tokenize_row(row, phi3, "chat", "completion")
    assert doc.input_ids[-1] == PHI3_END_ID


def test_a_template_without_an_end_token_ends_documents_with_eos(phi3, real_rows):
    phi3.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    row = real_rows[0]
    doc = tokenize_row(row, phi3, "chat", "completion")
    assert doc.input_ids[-1] == PHI3_EOS_ID
    assert loss_text(phi3, doc) == render_row(row, "chat", phi3).completion + "<|endoftext|>"


def test_ignored_tools_are_reported_once_not_per_row(phi3, real_rows, capsys):
    phi3.chat_template += "{# a template of this test alone, so no earlier test has reported it #}"
    tokenize_rows(real_rows[:30], phi3, "chat", "completion")
    tokenize_rows(real_rows[30:], phi3, "chat", "completion")
    assert capsys.readouterr().err.count("the chat template ignores tools=") == 1


def test_tiny_tokenizer_without_a_chat_template_is_refused(tiny_model_dir, real_rows):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    with pytest.raises(ValueError, match="data.template=chat needs a tokenizer with a chat template.*data.template=seed"):
        tokenize_row(real_rows[0], tokenizer, "chat", "completion")


def test_chat_packed_data_from_before_the_chat_format_is_refused(phi3, phi3_tokenizer_dir, real_rows_file):
    def components(template):
        overrides = [f"data.source={real_rows_file}", f"model.name_or_path={phi3_tokenizer_dir}", f"data.template={template}"]
        return fingerprint_components(load_config(None, overrides), phi3)

    chat = components("chat")
    assert chat["data.chat_format"] == f"fcdist's <tools> block in the user turn; the turn ends with {PHI3_END}"
    old = {key: value for key, value in chat.items() if key != "data.chat_format"}
    assert differing_keys(chat, old) == ["data.chat_format"]
    assert "data.chat_format" not in components("seed"), "seed-mode tokens did not change: its packed data stays valid"
