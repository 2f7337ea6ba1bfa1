"""Greedy generation with transformers (the hf backend): stop tokens and strings, the compile choice (the KV
cache's is fcdist.runtime.pick_cache, since it also decides the attention a model loads with), batches grouped by
length and run longest first, and where each answer ends.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from fcdist.data.render import CALLS_CLOSE

if TYPE_CHECKING:  # torch and transformers load only when a model does
    from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

@dataclass(frozen=True)
class Generation:
    index: int  # position of the prompt in the list given to the generator
    completion: str  # generated text, cut after the first </calls>
    new_tokens: int  # generated tokens up to the one that ended the answer (eos or </calls>), included
    latency_s: float  # wall time of its batch divided by the batch's prompts (sums to the total time)
    token_ids: tuple[int, ...]  # the new_tokens generated ids


def pick_compile(setting: str, cache: str, model: PreTrainedModel) -> bool:
    """Whether generate compiles the decoding step. It can only with a static cache on a CUDA GPU and a model
    transformers can compile whole; auto compiles exactly there, always refuses anything else now, before any
    prompt is generated."""
    possible = cache == "static" and model.device.type == "cuda" and model._can_compile_fullgraph
    if setting == "auto" and cache == "static" and model.device.type == "cuda" and not possible:
        print(f"infer.compile=auto: transformers cannot compile {type(model).__name__} whole; decoding uncompiled",
              file=sys.stderr)
    if setting == "always" and not possible:
        raise ValueError(f"infer.compile=always needs infer.cache=static, a CUDA GPU and a model transformers can compile; "
                         f"here: infer.cache={cache} on {model.device.type} with {type(model).__name__} "
                         f"(set infer.compile=auto or never)")
    return possible and setting != "never"


def cut_after_close(text: str) -> str:
    """The text up to and including the first ``</calls>``; all of it when there is none."""
    end = text.find(CALLS_CLOSE)
    return text if end < 0 else text[: end + len(CALLS_CLOSE)]


def stop_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, end_id: int | None) -> list[int]:
    """The model's eos tokens (the tokenizer's when the model names none) and ``end_id``, the token training
    ended documents with (the chat template's end of turn), which a model's own config may not list."""
    eos = model.generation_config.eos_token_id  # Phi-3 lists several (<|endoftext|>, <|end|>, ...)
    ids = list(eos) if isinstance(eos, list) else [eos if eos is not None else tokenizer.eos_token_id]
    return ids + [end_id] if end_id is not None and end_id not in ids else ids


def greedy_settings(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_new_tokens: int,
                    end_id: int | None = None, cache: str = "dynamic", compile: bool = False) -> GenerationConfig:
    """Greedy decoding that stops at ``</calls>`` or any of :func:`stop_ids`. The KV cache stays on:
    prompts are padded, never packed, so the cache holds exactly one prompt per row. A static cache is sized
    by generate for the longest batch's prompt + ``max_new_tokens`` and kept at that size for later (shorter)
    batches, so a compiled step is not recompiled for each batch's length."""
    from transformers import GenerationConfig

    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        stop_strings=[CALLS_CLOSE],
        eos_token_id=stop_ids(model, tokenizer, end_id),
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
        cache_implementation="static" if cache == "static" else None,
        disable_compile=not compile,  # transformers compiles a static-cache step on CUDA unless told not to
    )


def eos_ids(settings: GenerationConfig) -> set[int]:
    eos = settings.eos_token_id
    return set(eos) if isinstance(eos, list) else {eos}


def tokens_used(new_ids: list[int], tokenizer: PreTrainedTokenizerBase, eos: set[int]) -> int:
    """Generated tokens that belong to the answer: up to the first eos or the token completing ``</calls>``,
    both included. What follows is padding, added while other rows of the batch went on."""
    end = next((i + 1 for i, token in enumerate(new_ids) if token in eos), len(new_ids))
    if CALLS_CLOSE not in tokenizer.decode(new_ids[:end], skip_special_tokens=True):
        return end
    low, high = 1, end  # binary search for the shortest prefix holding </calls>: longer prefixes only add text
    while low < high:
        middle = (low + high) // 2
        if CALLS_CLOSE in tokenizer.decode(new_ids[:middle], skip_special_tokens=True):
            high = middle
        else:
            low = middle + 1
    return low


def generate_batch(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt_ids: list[list[int]], indices: list[int],
    settings: GenerationConfig,
) -> list[Generation]:
    import torch

    started = time.perf_counter()
    inputs = tokenizer.pad({"input_ids": prompt_ids}, return_tensors="pt").to(model.device)
    width = inputs["input_ids"].shape[1]
    try:
        with torch.inference_mode():
            output = model.generate(**inputs, generation_config=settings, tokenizer=tokenizer)
    except torch.OutOfMemoryError:  # batches run longest first, so this is the first batch, not one hours in
        raise RuntimeError(f"out of memory on {model.device} generating {len(prompt_ids)} prompts of up to {width} "
                           f"tokens + infer.max_new_tokens={settings.max_new_tokens}: lower infer.batch_size "
                           f"(or infer.max_new_tokens)") from None
    new_rows = output[:, width:].tolist()
    eos = eos_ids(settings)
    used = [tokens_used(row, tokenizer, eos) for row in new_rows]
    texts = [tokenizer.decode(row[:n], skip_special_tokens=True) for row, n in zip(new_rows, used)]
    latency = (time.perf_counter() - started) / len(indices)
    return [Generation(i, cut_after_close(text), n, latency, tuple(row[:n]))
            for i, text, n, row in zip(indices, texts, used, new_rows)]


def generate_calls(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str], max_new_tokens: int,
    batch_size: int, add_special_tokens: bool = True, end_id: int | None = None, cache: str = "dynamic",
    compile: bool = False,
) -> Iterator[list[Generation]]:
    """Greedy completions of ``prompts``, one list per batch. Batches group prompts of similar length (less
    padding) and run longest first, so an out-of-memory error shows in the first batch, not hours in.

    ``add_special_tokens`` must match training: on for the seed template, off for chat templates (which write
    their own bos into the text). ``end_id`` is the token training ended documents with (:func:`end_token_id`).
    ``cache`` and ``compile`` are :func:`pick_cache`'s and :func:`pick_compile`'s answers; the ids generated are
    the same with either cache.
    """
    prompt_ids = tokenizer(prompts, add_special_tokens=add_special_tokens)["input_ids"]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompt_ids[i]))
    settings = greedy_settings(model, tokenizer, max_new_tokens, end_id, cache, compile)
    for start in range(0, len(order), batch_size):
        indices = order[start:start + batch_size]
        yield generate_batch(model, tokenizer, [prompt_ids[i] for i in indices], indices, settings)
