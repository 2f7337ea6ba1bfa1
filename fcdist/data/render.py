"""Render xlam rows as training text, the seed's format byte for byte.

    <user>{query}</user>\n\n<tools>{one tool dict per line}</tools>\n\n<calls>{one call dict per line}</calls>

followed by the tokenizer's eos token. Dicts are written with Python's ``str`` (their repr), as the seed
notebook did, so a model trained here answers in the same dialect the seed's users already parse.
"""

from __future__ import annotations

from dataclasses import dataclass

CALLS_OPEN = "<calls>"
CALLS_CLOSE = "</calls>"


@dataclass(frozen=True)
class Rendered:
    """One row split at the point where loss starts under ``train_on: completion``."""

    prompt: str  # everything up to and including "<calls>"
    completion: str  # the calls and "</calls>", without eos

    @property
    def text(self) -> str:
        return self.prompt + self.completion


def render_prompt(query: str, tools: list[dict]) -> str:
    """The part a model sees at inference time: query, tools and the opening ``<calls>``."""
    tool_lines = "\n".join(str(tool) for tool in tools)
    return f"<user>{query}</user>\n\n<tools>{tool_lines}</tools>\n\n{CALLS_OPEN}"


def render_completion(answers: list[dict]) -> str:
    """The part a model learns to produce: one call per line, then ``</calls>``."""
    return "\n".join(str(call) for call in answers) + CALLS_CLOSE


def render_seed(query: str, tools: list[dict], answers: list[dict]) -> Rendered:
    return Rendered(render_prompt(query, tools), render_completion(answers))


def render_text(query: str, tools: list[dict], answers: list[dict]) -> str:
    """The whole rendered row without eos (the seed appends the tokenizer's eos after it)."""
    return render_seed(query, tools, answers).text


def render_chat(tokenizer, query: str, tools: list[dict], answers: list[dict]) -> Rendered:
    """Chat-template mode for tokenizers whose template accepts ``tools``.

    The assistant turn carries the calls in the seed's ``<calls>`` format, so scoring is the same in both
    modes; the template decides how the user turn and tool list are framed.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "data.template=chat needs a tokenizer with a chat template; this one has none (use data.template=seed)"
        )
    messages = [{"role": "user", "content": query}]
    prompt = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
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
        from fcdist.preprocess.shards import load_tokenizer

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
