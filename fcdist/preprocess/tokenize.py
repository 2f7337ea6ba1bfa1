"""Tokenize rendered rows and mark which tokens carry loss.

The prompt is tokenized as inference sees it, the completion follows it, then the end token: eos in the seed
format, the chat template's own end of turn (Phi-3: ``<|end|>``) in chat mode. Under ``train_on: completion``
exactly the completion's tokens and the end token carry loss (the end token because the model must learn to stop).
"""

from __future__ import annotations

from dataclasses import dataclass

from fcdist.data.render import Rendered, chat_format, render_chat, render_seed
from fcdist.data.xlam import XlamRow

IGNORE_INDEX = -100  # the label value PyTorch's cross-entropy skips


@dataclass(frozen=True)
class TokenizedDoc:
    input_ids: list[int]
    labels: list[int]

    @property
    def num_loss_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def render_row(row: XlamRow, template: str, tokenizer) -> Rendered:
    if template == "chat":
        return render_chat(tokenizer, row.query, row.tools, row.answers)
    return render_seed(row.query, row.tools, row.answers)


def end_token_id(tokenizer, template: str) -> int:
    """The token that ends a document and stops generation: the chat template's end of turn, else eos."""
    return chat_format(tokenizer).end_of_turn_id if template == "chat" else tokenizer.eos_token_id


def tokenize_rendered(rendered: list[Rendered], tokenizer, train_on: str, end_id: int,
                      add_special_tokens: bool = True) -> list[TokenizedDoc]:
    """Token ids of prompt + completion + ``end_id`` for a batch of rows, with labels masked on the prompt if asked.

    The prompt is always tokenized exactly as inference will tokenize it (on its own). Where the whole
    text tokenizes to the prompt's ids followed by more, those are the completion's ids; where a token
    would merge across the boundary (``>{`` in a byte-level BPE), the completion is tokenized on its own
    instead, so training never teaches a prompt ending that inference cannot produce.
    ``add_special_tokens`` is off for chat templates, which write their own bos into the text.
    The end token is appended as an id, never as text that the tokenizer might split or merge.
    Batches go to the tokenizer's Rust side in one call each, which is several times faster than row by row.
    """
    prompts = tokenizer([r.prompt for r in rendered], add_special_tokens=add_special_tokens)["input_ids"]
    fulls = tokenizer([r.text for r in rendered], add_special_tokens=add_special_tokens)["input_ids"]
    completions = [full[len(prompt):] if full[: len(prompt)] == prompt else None for prompt, full in zip(prompts, fulls)]
    merged = [i for i, ids in enumerate(completions) if ids is None]
    if merged:
        alone = tokenizer([rendered[i].completion for i in merged], add_special_tokens=False)["input_ids"]
        for i, ids in zip(merged, alone):
            completions[i] = ids
    docs = []
    for prompt_ids, completion_ids in zip(prompts, completions):
        input_ids = list(prompt_ids) + list(completion_ids) + [end_id]
        labels = list(input_ids) if train_on == "all" else [IGNORE_INDEX] * len(prompt_ids) + input_ids[len(prompt_ids):]
        docs.append(TokenizedDoc(input_ids, labels))
    return docs


def tokenize_rows(rows: list[XlamRow], tokenizer, template: str, train_on: str) -> list[TokenizedDoc]:
    if not rows:  # a batch with nothing to train on (all held out or bad); the tokenizer fails on an empty list
        return []
    rendered = [render_row(row, template, tokenizer) for row in rows]
    return tokenize_rendered(rendered, tokenizer, train_on, end_token_id(tokenizer, template), template == "seed")


def tokenize_row(row: XlamRow, tokenizer, template: str, train_on: str) -> TokenizedDoc:
    return tokenize_rows([row], tokenizer, template, train_on)[0]
