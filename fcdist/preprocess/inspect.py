"""``fcdist inspect``: one row rendered and tokenized as training sees it, with the loss tokens marked."""

from __future__ import annotations

import argparse

from fcdist.config import add_config_arguments, load_config
from fcdist.data.xlam import load_raw, parse_row
from fcdist.preprocess.packing import DROPPED_NO_LOSS, DROPPED_OVERLONG, FITS, count_loss_tokens, fit_document
from fcdist.preprocess.tokenize import IGNORE_INDEX, tokenize_row
from fcdist.runtime import load_tokenizer

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


def fate(doc, max_length: int, overlong: str) -> str:
    """What preprocessing does with the document, saying plainly how many of its loss tokens are trained on."""
    input_ids, labels, outcome = fit_document(doc.input_ids, doc.labels, max_length, overlong)
    if outcome == FITS:
        return f"fits max_length={max_length}: all {doc.num_loss_tokens} loss tokens are trained on"
    if outcome == DROPPED_OVERLONG:
        return f"over max_length={max_length}: dropped (overlong: drop), none of its {doc.num_loss_tokens} loss tokens is trained on"
    if outcome == DROPPED_NO_LOSS:
        return (f"over max_length={max_length}: truncation would leave 0 of its {doc.num_loss_tokens} loss tokens, "
                "so it is dropped; raise data.max_length to train on it")
    return (f"over max_length={max_length}: truncated to {len(input_ids)} tokens, {count_loss_tokens(labels)} of its "
            f"{doc.num_loss_tokens} loss tokens survive")


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
    print(f"\nrow {args.row}: {len(doc.input_ids)} tokens, {doc.num_loss_tokens} carry loss "
          f"(train_on={config.data.train_on}); {fate(doc, config.data.max_length, config.data.overlong)}")
    return 0
