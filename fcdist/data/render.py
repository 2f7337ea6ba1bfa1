"""Render xlam rows as training text, the seed's format byte for byte.

    <user>{query}</user>\n\n<tools>{one tool dict per line}</tools>\n\n<calls>{one call dict per line}</calls>

followed by the tokenizer's eos token. Dicts are written with Python's ``str`` (their repr), as the seed
notebook did, so a model trained here answers in the same dialect the seed's users already parse.
``data.template=chat`` frames the same query, tools and calls with the tokenizer's chat template instead
(:func:`render_chat`).
"""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass

CALLS_OPEN = "<calls>"
CALLS_CLOSE = "</calls>"
# Names no template, tool or query writes by chance: where they show up, the probe put them there.
PROBE_TOOL = "fcdist_probe_tool_7c3e91a4"
PROBE_ANSWER = "fcdist_probe_answer_7c3e91a4"


@dataclass(frozen=True)
class Rendered:
    """One row split at the point where loss starts under ``train_on: completion``."""

    prompt: str  # everything up to and including "<calls>"
    completion: str  # the calls and "</calls>", without eos

    @property
    def text(self) -> str:
        return self.prompt + self.completion


def render_tools(tools: list[dict]) -> str:
    """fcdist's tools block: one tool dict per line between ``<tools>`` and ``</tools>``."""
    tool_lines = "\n".join(str(tool) for tool in tools)
    return f"<tools>{tool_lines}</tools>"


def render_prompt(query: str, tools: list[dict]) -> str:
    """The part a model sees at inference time: query, tools and the opening ``<calls>``."""
    return f"<user>{query}</user>\n\n{render_tools(tools)}\n\n{CALLS_OPEN}"


def render_completion(answers: list[dict]) -> str:
    """The part a model learns to produce: one call per line, then ``</calls>``."""
    return "\n".join(str(call) for call in answers) + CALLS_CLOSE


def render_seed(query: str, tools: list[dict], answers: list[dict]) -> Rendered:
    return Rendered(render_prompt(query, tools), render_completion(answers))


def render_text(query: str, tools: list[dict], answers: list[dict]) -> str:
    """The whole rendered row without eos (the seed appends the tokenizer's eos after it)."""
    return render_seed(query, tools, answers).text


@dataclass(frozen=True)
class ChatFormat:
    """What a tokenizer's chat template does with fcdist's rows, learned by rendering a probe."""

    renders_tools: bool  # the template writes the ``tools=`` list into the prompt
    end_of_turn: str  # the token that closes the assistant turn (eos where the template writes none)
    end_of_turn_id: int

    def describe(self) -> str:
        tools = "tools= through the template" if self.renders_tools else "fcdist's <tools> block in the user turn"
        return f"{tools}; the turn ends with {self.end_of_turn}"


_chat_formats = weakref.WeakKeyDictionary()  # tokenizer -> (its chat template, ChatFormat): one probe each
_announced: set[str] = set()  # templates already reported as ignoring tools; forked workers inherit it


def chat_format(tokenizer) -> ChatFormat:
    """The tokenizer's :class:`ChatFormat`, probed once per tokenizer (again if its template changes)."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise ValueError(
            "data.template=chat needs a tokenizer with a chat template; this one has none (use data.template=seed)"
        )
    cached = _chat_formats.get(tokenizer)
    if cached is None or cached[0] != template:
        cached = _chat_formats[tokenizer] = (template, probe_chat_format(tokenizer))
    if not cached[1].renders_tools and str(template) not in _announced:
        _announced.add(str(template))
        print(f"{tokenizer.name_or_path}: the chat template ignores tools=, so fcdist writes its <tools> block "
              "into each user turn", file=sys.stderr)
    return cached[1]


def probe_chat_format(tokenizer) -> ChatFormat:
    """Render a marker tool and a marker answer: does the tool reach the prompt, what follows the answer?"""
    from jinja2 import TemplateError

    user = [{"role": "user", "content": "probe"}]
    tool = {"name": PROBE_TOOL, "description": "probe", "parameters": {}}  # the shape of an xlam tool
    try:
        prompt = tokenizer.apply_chat_template(user, tools=[tool], tokenize=False, add_generation_prompt=True)
        turn = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": PROBE_ANSWER}], tokenize=False)
    except TemplateError as e:
        raise ValueError(f"{tokenizer.name_or_path}: its chat template cannot render a user and an assistant turn "
                         f"({e}); use data.template=seed") from None
    if PROBE_ANSWER not in turn:
        raise ValueError(f"{tokenizer.name_or_path}: its chat template drops the assistant's message; "
                         "use data.template=seed")
    end = turn_end_token(tokenizer, turn.split(PROBE_ANSWER, 1)[1])
    return ChatFormat(PROBE_TOOL in prompt, end, tokenizer.convert_tokens_to_ids(end))


def turn_end_token(tokenizer, after_answer: str) -> str:
    """The special token a template writes right after an assistant message (Phi-3: ``<|end|>``).

    A template that closes the turn with plain text or nothing gives the model no token to stop on; eos,
    which generation always stops at, then ends the document, as in the seed format.
    """
    text = after_answer.lstrip()
    tokens = sorted(tokenizer.get_added_vocab(), key=len, reverse=True)  # longest first: never a token's prefix
    return next((token for token in tokens if text.startswith(token)), tokenizer.eos_token)


def render_chat(tokenizer, query: str, tools: list[dict], answers: list[dict]) -> Rendered:
    """Chat-template mode: the query in a user turn, the calls in the seed's ``<calls>`` format in the
    assistant turn, so scoring is the same in both modes.

    The tools go through the template where it renders ``tools=``; where it ignores them (Phi-3), fcdist's
    own ``<tools>`` block follows the query in the user turn, so no prompt ever lacks its tools.
    """
    renders_tools = chat_format(tokenizer).renders_tools
    content = query if renders_tools else f"{query}\n\n{render_tools(tools)}"
    user = [{"role": "user", "content": content}]
    prompt = tokenizer.apply_chat_template(user, tools=tools if renders_tools else None, tokenize=False,
                                           add_generation_prompt=True)
    return Rendered(prompt + CALLS_OPEN, render_completion(answers))


def build_parser():
    import argparse

    from fcdist.config import add_config_arguments

    parser = argparse.ArgumentParser(
        prog="fcdist render",
        usage="fcdist render --data FILE [--config C] --out OUT.jsonl [key=value ...]",
        description="Render xlam rows; one JSON line per row: id, prompt, completion, text, split.",
    )
    parser.add_argument("--data", required=True, help="xlam-format rows (.jsonl, .json or .parquet)")
    parser.add_argument("--out", required=True, help="output .jsonl")
    add_config_arguments(parser, "job config for template, held-out fraction and bad-row policy (default: built-in defaults)",
                         required=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    import json
    import sys
    from pathlib import Path

    from fcdist.atomic import atomic_path
    from fcdist.config import load_config
    from fcdist.data.xlam import is_heldout, read_rows

    args = build_parser().parse_args(argv)
    config = load_config(args.config, args.overrides)
    rows, skips = read_rows(args.data, config.data.on_bad_row)
    if skips.skipped:
        print(f"{args.data}: {skips.summary()}", file=sys.stderr)
    tokenizer = None
    if config.data.template == "chat":
        from fcdist.runtime import load_tokenizer

        tokenizer = load_tokenizer(config)
    out = Path(args.out)
    with atomic_path(out) as tmp, open(tmp, "w") as f:
        for row in rows:
            rendered = render_chat(tokenizer, row.query, row.tools, row.answers) if tokenizer else render_seed(row.query, row.tools, row.answers)
            split = "heldout" if is_heldout(row.id, config.data.heldout_fraction) else "train"
            record = {"id": row.id, "prompt": rendered.prompt, "completion": rendered.completion, "text": rendered.text, "split": split}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{out}: {len(rows)} rows rendered")
    return 0
