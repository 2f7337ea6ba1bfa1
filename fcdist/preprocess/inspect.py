"""``fcdist inspect``: one row rendered and tokenized as training sees it, with the loss tokens marked."""

from __future__ import annotations

import argparse

from fcdist.config import add_config_arguments, load_config
from fcdist.data.xlam import load_raw, parse_row
from fcdist.preprocess.shards import load_tokenizer
from fcdist.preprocess.tokenize import IGNORE_INDEX, tokenize_row

LOSS_START, LOSS_END = "\x1b[1;32m", "\x1b[0m"  # bold green in a terminal


def find_raw_row(config, row_id: str) -> dict:
    ds = load_raw(config.data.source, config.data.revision, config.data.split)
    matches = ds.filter(lambda value: str(value) == row_id, input_columns=["id"])
    if len(matches) == 0:
        raise KeyError(f"{config.data.source}: no row with id {row_id!r}")
    return matches[0]


def annotate(tokenizer, input_ids: list[int], labels: list[int], color: bool) -> str:
    """Tokens separated by '|', loss-carrying ones wrapped in [[...]] (or coloured in a terminal)."""
    pieces = []
    for token, label in zip(input_ids, labels):
        text = tokenizer.decode([token]).replace("\n", "\\n")
        if label == IGNORE_INDEX:
            pieces.append(text)
        else:
            pieces.append(f"{LOSS_START}{text}{LOSS_END}" if color else f"[[{text}]]")
    return "|".join(pieces)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist inspect",
        usage="fcdist inspect --config C --row ID [--no-color] [key=value ...]",
        description="Show one rendered, tokenized row with the tokens that carry loss marked, and its length.",
    )
    add_config_arguments(parser)
    parser.add_argument("--row", required=True, help="row id")
    parser.add_argument("--no-color", action="store_true", help="mark loss tokens as [[tok]] instead of colour")
    return parser


def main(argv: list[str] | None = None) -> int:
    import sys

    args = build_parser().parse_args(argv)
    config = load_config(args.config, args.overrides)
    tokenizer = load_tokenizer(config)
    row = parse_row(find_raw_row(config, args.row), config.data.source)
    doc = tokenize_row(row, tokenizer, config.data.template, config.data.train_on)
    color = sys.stdout.isatty() and not args.no_color
    print(annotate(tokenizer, doc.input_ids, doc.labels, color))
    over = len(doc.input_ids) > config.data.max_length
    print(f"\nrow {args.row}: {len(doc.input_ids)} tokens ({doc.num_loss_tokens} carry loss; "
          f"train_on={config.data.train_on}; max_length={config.data.max_length}"
          f"{', will be ' + config.data.overlong + 'd' if over else ''})")
    return 0
