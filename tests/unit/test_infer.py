"""fcdist infer's parts on the tiny model: padding-invariant batching, stopping, shards, resume and merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from fcdist.config import load_config
from fcdist.data.xlam import parse_row
from fcdist.infer import build_parser, free_form_prompt, row_prompts
from fcdist.infer.generate import cut_after_close, generate_calls, greedy_settings, pick_compile, stop_ids, tokens_used
from fcdist.infer.predictions import merge_shards, resume, shard_path, shard_slice
from fcdist.model.load import load_inference_tokenizer, load_model_for_inference
from fcdist.preprocess.tokenize import end_token_id
from fcdist.runtime import inference_attention, pick_cache

MAX_NEW_TOKENS = 12
NUM_PROMPTS = 12
ANSWER = "{'x': 1}</calls>"  # what the successor model writes after its first prompt, then junk
SECOND_ANSWER = "done now"  # what it writes after its second prompt, then eos
PROMPTS = ("first prompt", "second one")


@pytest.fixture(scope="module")
def config():
    return load_config(None, ["model.dtype=fp32", f"infer.max_new_tokens={MAX_NEW_TOKENS}"])


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir, config):
    return load_model_for_inference(tiny_model_dir, config)


@pytest.fixture(scope="module")
def short_prompts(synth_data_file, model_and_tokenizer, config) -> list[str]:
    """The synthetic rows' shortest prompts (the tiny CPU model pays for every prompt token)."""
    rows = [parse_row(json.loads(line), "synth") for line in synth_data_file.read_text().splitlines()]
    return sorted(row_prompts(rows, config, model_and_tokenizer[1]), key=len)[:NUM_PROMPTS]


def ids_of(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.fixture(scope="module")
def successor_model(tiny_model_dir, model_and_tokenizer, tmp_path_factory):
    """The tiny model rewired so each next token depends only on the current one: attention and MLP outputs
    are zeroed and each lm_head row points at its one predecessor's embedding. After PROMPTS[0] it writes
    ANSWER and then junk; after PROMPTS[1] it writes SECOND_ANSWER and eos. Stopping is then testable."""
    tokenizer = model_and_tokenizer[1]
    first, second = (ids_of(tokenizer, text) for text in PROMPTS)
    chain_one = [first[-1], *ids_of(tokenizer, ANSWER), ids_of(tokenizer, "junk")[0]]
    chain_two = [second[-1], *ids_of(tokenizer, SECOND_ANSWER), tokenizer.eos_token_id]
    return successor_model_of(AutoModelForCausalLM.from_pretrained(tiny_model_dir), [chain_one, chain_two]), tokenizer


def successor_model_of(model, chains: list[list[int]]):
    """``model`` rewired so that after each token of a chain it writes the chain's next token."""
    every = [token for chain in chains for token in chain]
    assert len(set(every)) == len(every), "each token needs one successor"
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed, head = model.get_input_embeddings().weight, model.lm_head.weight
        head.zero_()
        for chain in chains:
            for current, following in zip(chain, chain[1:]):
                head[following] = embed[current] / embed[current].norm()
    return model.eval()


def by_index(batches) -> list:
    return sorted((g for batch in batches for g in batch), key=lambda g: g.index)


def test_left_padded_batches_generate_what_single_prompts_do(model_and_tokenizer, short_prompts):
    model, tokenizer = model_and_tokenizer
    batched = by_index(generate_calls(model, tokenizer, short_prompts, MAX_NEW_TOKENS, batch_size=5))
    single = by_index(generate_calls(model, tokenizer, short_prompts, MAX_NEW_TOKENS, batch_size=1))
    assert [g.index for g in batched] == list(range(NUM_PROMPTS))
    assert [g.completion for g in batched] == [g.completion for g in single]
    assert [g.new_tokens for g in batched] == [g.new_tokens for g in single]
    assert all(0 < g.new_tokens <= MAX_NEW_TOKENS for g in batched)
    assert len({g.completion for g in batched}) > 1, "a degenerate model would make this test vacuous"


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_each_cache_generates_the_ids_of_one_prompt_at_a_time(model_and_tokenizer, short_prompts, cache):
    """Batched with either KV cache (the static one attends over a preallocated, masked tail) gives, row for row,
    the token ids greedy decoding of each prompt alone gives."""
    model, tokenizer = model_and_tokenizer
    single = by_index(generate_calls(model, tokenizer, short_prompts, MAX_NEW_TOKENS, batch_size=1))
    batched = by_index(generate_calls(model, tokenizer, short_prompts, MAX_NEW_TOKENS, batch_size=5, cache=cache))
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]
    assert [g.completion for g in batched] == [g.completion for g in single]
    assert all(len(g.token_ids) == g.new_tokens for g in batched)


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_stops_are_the_same_with_a_static_cache(successor_model, cache):
    model, tokenizer = successor_model
    one, two = by_index(generate_calls(model, tokenizer, list(PROMPTS), 20, batch_size=2, cache=cache))
    assert (one.completion, two.completion) == (ANSWER, SECOND_ANSWER)
    assert two.token_ids[-1] == tokenizer.eos_token_id


def test_cache_auto_is_static_on_a_gpu_only():
    assert pick_cache("auto", torch.device("cpu")) == "dynamic"
    assert pick_cache("auto", torch.device("cuda", 0)) == "static"
    assert pick_cache("static", torch.device("cpu")) == "static"
    assert inference_attention("auto", "auto", torch.device("cuda", 0)) == "sdpa"


def test_compile_where_it_cannot_run_is_refused_naming_the_setting(model_and_tokenizer):
    model = model_and_tokenizer[0]
    with pytest.raises(ValueError, match=r"infer.compile=always needs infer.cache=static, a CUDA GPU.*here: infer.cache=static on cpu"):
        pick_compile("always", "static", model)
    assert not pick_compile("auto", "static", model) and not pick_compile("never", "static", model)
    assert greedy_settings(model, model_and_tokenizer[1], 4, cache="static").disable_compile


def test_running_out_of_memory_names_the_batch_size(model_and_tokenizer, short_prompts, monkeypatch):
    """A GPU that runs out of memory (stood in for by raising torch's error) ends with the setting to lower."""
    model, tokenizer = model_and_tokenizer

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    monkeypatch.setattr(model, "generate", out_of_memory)
    with pytest.raises(RuntimeError, match=r"generating 3 prompts of up to \d+ tokens \+ infer.max_new_tokens=5: lower infer.batch_size"):
        next(generate_calls(model, tokenizer, short_prompts, 5, batch_size=3))


def test_stops_at_calls_close_or_eos_row_by_row(successor_model):
    model, tokenizer = successor_model
    one, two = by_index(generate_calls(model, tokenizer, list(PROMPTS), max_new_tokens=20, batch_size=2))
    assert one.completion == ANSWER and one.new_tokens == len(ids_of(tokenizer, ANSWER))
    assert two.completion == SECOND_ANSWER and two.new_tokens == len(ids_of(tokenizer, SECOND_ANSWER)) + 1

    inputs = tokenizer.pad({"input_ids": [ids_of(tokenizer, p) for p in PROMPTS]}, return_tensors="pt")
    output = model.generate(**inputs, generation_config=greedy_settings(model, tokenizer, 20), tokenizer=tokenizer)
    assert output.shape[1] - inputs["input_ids"].shape[1] == max(one.new_tokens, two.new_tokens), \
        "the batch ends when its last row stops, not at max_new_tokens"


def test_chat_mode_stops_at_the_templates_end_of_turn(tiny_model_dir, config):
    """A tokenizer whose chat template closes turns with <|end|> (as Phi-3's does), a model that writes
    SECOND_ANSWER, <|end|> and then junk: generation must stop at <|end|>, as training taught it to."""
    tokenizer = load_inference_tokenizer(tiny_model_dir, config)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|end|>"]})
    tokenizer.chat_template = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    end_id = end_token_id(tokenizer, "chat")
    assert tokenizer.convert_ids_to_tokens(end_id) == "<|end|>" and end_id != tokenizer.eos_token_id
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.resize_token_embeddings(len(tokenizer))
    prompt, answer = ids_of(tokenizer, PROMPTS[1]), ids_of(tokenizer, SECOND_ANSWER)
    model = successor_model_of(model, [[prompt[-1], *answer, end_id, *ids_of(tokenizer, "junk")]])
    assert end_id in stop_ids(model, tokenizer, end_id) and tokenizer.eos_token_id in stop_ids(model, tokenizer, end_id)

    (stopped,) = by_index(generate_calls(model, tokenizer, [PROMPTS[1]], 20, 1, end_id=end_id))
    assert stopped.completion == SECOND_ANSWER and stopped.new_tokens == len(answer) + 1
    (ran_on,) = by_index(generate_calls(model, tokenizer, [PROMPTS[1]], 20, 1))
    assert ran_on.completion.startswith(SECOND_ANSWER + "junk"), "without the end of turn it would not have stopped"


def test_generation_is_bounded_by_max_new_tokens(successor_model):
    model, tokenizer = successor_model
    (cut,) = by_index(generate_calls(model, tokenizer, [PROMPTS[0]], max_new_tokens=3, batch_size=1))
    assert cut.new_tokens == 3 and cut.completion == tokenizer.decode(ids_of(tokenizer, ANSWER)[:3])


def test_cut_after_close():
    assert cut_after_close("{'a': 1}</calls>\n{'b': 2}</calls>") == "{'a': 1}</calls>"
    assert cut_after_close("{'a': 1}</calls>") == "{'a': 1}</calls>"
    assert cut_after_close("{'a': 1") == "{'a': 1"


def test_tokens_used_ends_at_the_stop(model_and_tokenizer):
    tokenizer = model_and_tokenizer[1]
    answer, eos, pad = ids_of(tokenizer, ANSWER), tokenizer.eos_token_id, tokenizer.pad_token_id
    assert tokens_used(answer + ids_of(tokenizer, " more") + [pad, pad], tokenizer, {eos}) == len(answer)
    assert tokens_used(answer[:3] + [eos, pad], tokenizer, {eos}) == 4
    assert tokens_used(answer[:3], tokenizer, {eos}) == 3


def test_shard_slices_are_contiguous_and_cover_every_row_once():
    rows = list(range(23))
    slices = [shard_slice(rows, i, 4) for i in range(4)]
    assert sum(slices, []) == rows
    assert {len(s) for s in slices} <= {5, 6}


def test_shard_file_sits_beside_the_output(tmp_path):
    assert shard_path(tmp_path / "pred.jsonl", 0, 1) == tmp_path / "pred.jsonl"
    assert shard_path(tmp_path / "pred.jsonl", 2, 3) == tmp_path / "pred.shard-2-of-3.jsonl"


def write_lines(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def gold_file(synth_data_file, tmp_path) -> Path:
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(synth_data_file.read_text().splitlines(keepends=True)[:6]))
    return path


def gold_rows(gold_file: Path) -> list:
    return [parse_row(json.loads(line), "gold") for line in gold_file.read_text().splitlines()]


def test_resume_cuts_a_torn_line_and_refuses_foreign_ids(gold_file, tmp_path):
    rows, path = gold_rows(gold_file), tmp_path / "pred.jsonl"
    write_lines(path, [{"id": rows[0].id, "completion": ""}])
    path.write_text(path.read_text() + '{"id": 1, "compl')
    assert resume(path, rows) == {str(rows[0].id)}
    assert path.read_text().count("\n") == 1 and path.read_text().endswith("}\n")
    with pytest.raises(ValueError, match="not in this shard"):
        resume(path, rows[1:])


def test_merge_checks_every_id_and_names_the_missing_one(gold_file, tmp_path):
    ids = [row.id for row in gold_rows(gold_file)]
    out = tmp_path / "pred.jsonl"
    records = [{"id": i, "completion": f"c{i}"} for i in reversed(ids)]
    write_lines(shard_path(out, 0, 2), records[:3])
    write_lines(shard_path(out, 1, 2), records[3:])
    merge_shards(out, 2, gold_file)
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ids  # data order

    write_lines(shard_path(out, 1, 2), records[4:])
    with pytest.raises(ValueError, match=rf"missing: {records[3]['id']}\b"):
        merge_shards(out, 2, gold_file)
    write_lines(shard_path(out, 1, 2), records[2:])
    with pytest.raises(ValueError, match=rf"more than once: {records[2]['id']}\b"):
        merge_shards(out, 2, gold_file)


def test_free_form_prompt_ends_with_calls_open():
    assert free_form_prompt("<user>hi</user>\\n\\n<tools>{}</tools>") == "<user>hi</user>\n\n<tools>{}</tools>\n\n<calls>"
    assert free_form_prompt("<user>hi</user>\n\n<calls>") == "<user>hi</user>\n\n<calls>"


def test_tokenizer_pads_on_the_left(tiny_model_dir, config):
    assert load_inference_tokenizer(tiny_model_dir, config).padding_side == "left"


def test_help_has_a_usage_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0 and "usage: fcdist infer" in capsys.readouterr().out
