"""The vllm backend (``infer.backend=vllm``): one engine on the full model or an adapter's base, serving the
adapter as a LoRARequest; answers cut and counted as the hf backend's are.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from fcdist.config import JobConfig
from fcdist.data.render import CALLS_CLOSE
from fcdist.infer.generate import Generation, cut_after_close
from fcdist.model.load import ADAPTER_CONFIG, adapter_base, revision_for, tokenizer_source
from fcdist.runtime import DTYPES

if TYPE_CHECKING:  # vllm is optional: it loads only when infer.backend=vllm
    from vllm import LLM
    from vllm.lora.request import LoRARequest

VLLM_CHUNK = 1024  # prompts per vLLM call: enough to keep its scheduler full, few enough that a kill loses little



def load_vllm(model_dir: Path, config: JobConfig, base_model: str | None = None) -> tuple[LLM, LoRARequest | None]:
    """A vLLM engine on the full model or the adapter's base, and the LoRARequest that serves the adapter
    as it is (None for a full model). Raises at once when vllm is missing, before any output is opened."""
    try:
        from vllm import LLM
        from vllm.lora.request import LoRARequest
    except ImportError:
        raise RuntimeError("infer.backend=vllm but vllm is not installed (pip install 'fcdist[vllm]'); "
                           "or use infer.backend=hf") from None
    base = adapter_base(model_dir, base_model)
    rank = json.loads((model_dir / ADAPTER_CONFIG).read_text())["r"] if base else None
    llm = LLM(
        model=str(base or model_dir), tokenizer=str(tokenizer_source(model_dir, base)),
        revision=revision_for(base or model_dir, config), trust_remote_code=config.model.trust_remote_code,
        dtype=DTYPES.get(config.model.dtype, "auto"), enable_lora=base is not None, max_lora_rank=rank or 16,
    )
    return llm, LoRARequest("fcdist-adapter", 1, str(model_dir)) if base else None


def vllm_generate_calls(llm: LLM, lora: LoRARequest | None, prompt_ids: list[list[int]], max_new_tokens: int,
                        end_id: int) -> Iterator[list[Generation]]:
    """Greedy completions from vLLM, which schedules its own batches; prompts go in chunks only so results
    are written as they come. Prompts arrive as token ids tokenized like the hf backend's (same bos handling).
    vLLM stops at the model's eos by itself; ``end_id`` (the chat template's end of turn) is added."""
    from vllm import SamplingParams

    params = SamplingParams(temperature=0, max_tokens=max_new_tokens, stop=[CALLS_CLOSE],
                            include_stop_str_in_output=True, stop_token_ids=[end_id])
    for start in range(0, len(prompt_ids), VLLM_CHUNK):
        chunk = [{"prompt_token_ids": ids} for ids in prompt_ids[start:start + VLLM_CHUNK]]
        started = time.perf_counter()
        outputs = llm.generate(chunk, params, lora_request=lora, use_tqdm=False)
        latency = (time.perf_counter() - started) / len(chunk)
        yield [Generation(start + i, cut_after_close(out.outputs[0].text), len(out.outputs[0].token_ids), latency,
                          tuple(out.outputs[0].token_ids)) for i, out in enumerate(outputs)]
