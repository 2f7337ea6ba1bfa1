"""Tokenize rendered rows and mark which tokens carry loss.

The whole text is tokenized at once (prompt and completion together, as the model will see it) and the
loss boundary is found from character offsets, so masking never changes how the text is tokenized.
A token carries loss when it covers any character of the completion; eos always does under
``train_on: completion`` because the model must learn to stop.
"""

from __future__ import annotations

from dataclasses import dataclass

from fcdist.data.render import Rendered, render_chat, render_seed
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


def tokenize_rendered(rendered: Rendered, tokenizer, train_on: str, add_special_tokens: bool = True) -> TokenizedDoc:
    """Token ids of prompt + completion + eos, with labels masked outside the completion if asked.

    ``add_special_tokens`` is off for chat templates, which write their own bos into the text.
    """
    encoding = tokenizer(rendered.text, return_offsets_mapping=True, add_special_tokens=add_special_tokens)
    input_ids = list(encoding["input_ids"]) + [tokenizer.eos_token_id]
    if train_on == "all":
        return TokenizedDoc(input_ids, list(input_ids))
    boundary = len(rendered.prompt)
    labels = [tok if end > boundary else IGNORE_INDEX for tok, (_, end) in zip(encoding["input_ids"], encoding["offset_mapping"])]
    return TokenizedDoc(input_ids, labels + [tokenizer.eos_token_id])


def tokenize_row(row: XlamRow, tokenizer, template: str, train_on: str) -> TokenizedDoc:
    return tokenize_rendered(render_row(row, template, tokenizer), tokenizer, train_on, add_special_tokens=template == "seed")
