"""``fcdist infer``: greedy generation of calls for held-out prompts, resumable and shardable.

    fcdist infer --run runs/<name> --data FILE --out PRED.jsonl [--shard I --num-shards N] [key=value ...]
    fcdist infer --model DIR [--config C] --data FILE --out PRED.jsonl [key=value ...]
    fcdist infer --merge-shards --num-shards N --data FILE --out PRED.jsonl
    fcdist infer --model DIR --prompt '<user>...</user>\\n\\n<tools>...</tools>'

A row's prompt is its training prompt (everything up to and including ``<calls>``); decoding is greedy and
stops at ``</calls>``, eos or, in chat mode, the template's end of turn. Each row becomes one JSON line
``{id, completion, new_tokens, latency_s}``, appended and fsynced after every batch; a rerun skips the ids
already written (after cutting off a torn last line), so a killed job loses nothing and duplicates nothing.

Shard i of N (``--shard/--num-shards``, else a SLURM array task, else torchrun's RANK of WORLD_SIZE) takes
the i-th contiguous slice of the rows in file order and writes ``PRED.shard-i-of-N.jsonl`` beside
``PRED.jsonl``. The shard that completes the set merges them into ``PRED.jsonl``, as ``--merge-shards``
does by hand.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from fcdist.config import JobConfig, add_config_arguments, load_config, load_run_config
from fcdist.data.render import CALLS_OPEN
from fcdist.data.xlam import XlamRow, max_row_chars
from fcdist.infer.generate import Generation, generate_calls, pick_compile
from fcdist.infer.predictions import (InferSummary, merge_shards, read_unique_rows, resume, shard_path, shard_slice,
                                      try_merge, write_generations)
from fcdist.infer.vllm_backend import load_vllm, vllm_generate_calls
from fcdist.layout import RunLayout
from fcdist.model.load import adapter_base, load_inference_tokenizer, load_model_for_inference, tokenizer_source
from fcdist.preprocess.tokenize import end_token_id, render_row
from fcdist.runtime import pick_cache, shard_from_environment

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

def row_prompts(rows: list[XlamRow], config: JobConfig, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Each row's prompt exactly as training rendered it, up to and including ``<calls>``."""
    return [render_row(row, config.data.template, tokenizer).prompt for row in rows]


def generator_for(model_dir: Path, config: JobConfig, rows: list[XlamRow], base_model: str | None
                  ) -> Iterator[list[Generation]]:
    """Batches of generations for ``rows`` from the configured backend (indices are positions in ``rows``)."""
    add_special = config.data.template == "seed"  # as in training: chat templates write their own bos
    if config.infer.backend == "vllm":
        llm, lora = load_vllm(model_dir, config, base_model)
        tokenizer = load_inference_tokenizer(tokenizer_source(model_dir, adapter_base(model_dir, base_model)), config)
        prompt_ids = tokenizer(row_prompts(rows, config, tokenizer), add_special_tokens=add_special)["input_ids"]
        end_id = end_token_id(tokenizer, config.data.template)
        return vllm_generate_calls(llm, lora, prompt_ids, config.infer.max_new_tokens, end_id)
    model, tokenizer = load_model_for_inference(model_dir, config, base_model)
    prompts = row_prompts(rows, config, tokenizer)
    cache = pick_cache(config.infer.cache, model.device)
    return generate_calls(model, tokenizer, prompts, config.infer.max_new_tokens, config.infer.batch_size, add_special,
                          end_token_id(tokenizer, config.data.template), cache,
                          pick_compile(config.infer.compile, cache, model))


def infer(model_dir: str | Path, data: str | Path, out: str | Path, config: JobConfig, shard: int = 0,
          num_shards: int = 1, base_model: str | None = None, progress: bool = True) -> InferSummary:
    """Generate for shard ``shard`` of ``num_shards`` of the rows of ``data``, resuming ``out``'s shard file.

    The model is loaded only when some row is left to do. When sharded and this shard completes the set, the
    shard files are merged into ``out``.
    """
    if not 0 <= shard < num_shards:
        raise ValueError(f"--shard {shard} is out of range for --num-shards {num_shards}")
    out = Path(out)
    rows = read_unique_rows(data, max_row_chars(config.data.max_length))
    mine = shard_slice(rows, shard, num_shards)
    path = shard_path(out, shard, num_shards)
    done = resume(path, mine)
    todo = [row for row in mine if str(row.id) not in done]
    summary = InferSummary(path, len(mine), len(done))
    if todo:
        started = time.perf_counter()
        batches = generator_for(Path(model_dir), config, todo, base_model)
        summary.load_seconds = time.perf_counter() - started
        write_generations(path, todo, batches, summary, progress)
    if num_shards > 1 and not try_merge(out, num_shards, [str(row.id) for row in rows]):
        summary.merged = out
    return summary


def free_form_prompt(text: str) -> str:
    """The seed's free-form input: line breaks may be typed as ``\\n``; ``<calls>`` is added when missing."""
    text = text.replace("\\n", "\n").rstrip()
    return text if text.endswith(CALLS_OPEN) else f"{text}\n\n{CALLS_OPEN}"


def one_prompt_compile(setting: str) -> str:
    """--prompt compiles only when told to: one prompt does not repay a compile."""
    return "always" if setting == "always" else "never"


def generate_one(model_dir: Path, config: JobConfig, prompt: str, base_model: str | None) -> str:
    model, tokenizer = load_model_for_inference(model_dir, config, base_model)
    cache = pick_cache(config.infer.cache, model.device)
    batches = generate_calls(model, tokenizer, [free_form_prompt(prompt)], config.infer.max_new_tokens, 1,
                             config.data.template == "seed", end_token_id(tokenizer, config.data.template), cache,
                             pick_compile(one_prompt_compile(config.infer.compile), cache, model))
    return next(batches)[0].completion


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist infer",
        usage="fcdist infer (--model DIR | --run RUN_DIR) [--config C] [--data FILE] --out PRED.jsonl "
              "[--shard I --num-shards N] [key=value ...]\n"
              "       fcdist infer --merge-shards --num-shards N [--data FILE] --out PRED.jsonl\n"
              "       fcdist infer (--model DIR | --run RUN_DIR) --prompt TEXT [key=value ...]",
        description="Generate calls greedily for xlam rows: one JSON line per row (id, completion, new_tokens, "
                    "latency_s), resumable, sharded by --shard, a SLURM array or torchrun ranks.",
        epilog="Sharded output goes to PRED.shard-<i>-of-<N>.jsonl beside PRED.jsonl; the shard that completes the "
               "set merges them into PRED.jsonl. latency_s is the batch's wall time divided by its prompts.",
    )
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model", type=Path, metavar="DIR", help="a full model folder, or a PEFT adapter folder (applied to the "
                                                  "base its adapter_config.json names)")
    model.add_argument("--run", type=Path, metavar="RUN_DIR", help="a run folder: its gathered/merged/ or gathered/adapter/ on the "
                                                "config's base, and its config.yaml unless --config is given")
    parser.add_argument("--data", type=Path, metavar="FILE", help="xlam rows to answer (default: <packed_dir>/heldout.jsonl)")
    parser.add_argument("--out", type=Path, metavar="PRED.jsonl", help="predictions .jsonl (resumed if it exists)")
    parser.add_argument("--shard", type=int, metavar="I", help="shard index (default: SLURM array task, else RANK, else 0)")
    parser.add_argument("--num-shards", type=int, metavar="N", help="number of shards (default: SLURM array size, else WORLD_SIZE, else 1)")
    parser.add_argument("--merge-shards", action="store_true", help="join the shard files into --out, checking every id")
    parser.add_argument("--prompt", metavar="TEXT", help="print the generation for one free-form prompt (\\n for line breaks)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run model code shipped with the model (a run's saved config never turns it on; your --config may)")
    add_config_arguments(parser, "job config (model settings, infer.*); default: the run's, else defaults", required=False)
    return parser


def job_config(args: argparse.Namespace) -> JobConfig:
    if args.run and not args.config:
        return load_run_config(args.run, args.overrides, args.trust_remote_code)
    config = load_config(args.config, args.overrides)
    config.model.trust_remote_code |= args.trust_remote_code
    return config


def shard_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[int, int]:
    if (args.shard is None) != (args.num_shards is None):
        parser.error("--shard and --num-shards go together")
    return (args.shard, args.num_shards) if args.shard is not None else shard_from_environment()


def run_stage(args: argparse.Namespace, parser: argparse.ArgumentParser, config: JobConfig, data: Path) -> int:
    if args.merge_shards:
        if not args.num_shards:
            parser.error("--merge-shards needs --num-shards")
        print(f"merged {args.num_shards} shard(s) into {merge_shards(args.out, args.num_shards, data)}")
        return 0
    model_dir = RunLayout.at(args.run).gathered_model() if args.run else args.model
    base = config.model.name_or_path if args.run else None
    if args.prompt is not None:
        print(generate_one(model_dir, config, args.prompt, base))
        return 0
    shard, num_shards = shard_args(args, parser)
    summary = infer(model_dir, data, args.out, config, shard, num_shards, base, progress=not args.no_progress)
    rate = summary.generated / summary.seconds if summary.seconds else 0.0
    print(f"{summary.path}: {summary.generated} generated, {summary.already_done} already done of {summary.rows} rows "
          f"({rate:.2f} prompts/s, {summary.new_tokens / (summary.seconds or 1):.1f} new tokens/s; first batch "
          f"{summary.first_batch_seconds:.1f} s of {summary.seconds:.1f} s; model loaded before, in {summary.load_seconds:.1f} s)")
    if summary.merged:
        print(f"all {num_shards} shards complete: merged into {summary.merged}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.merge_shards and not (args.model or args.run):
        parser.error("give --model DIR or --run RUN_DIR (or --merge-shards)")
    if args.prompt is None and args.out is None:
        parser.error("--out is required (except with --prompt)")
    try:
        config = job_config(args)
        return run_stage(args, parser, config, args.data or RunLayout.of(config).heldout)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"fcdist infer: error: {e}", file=sys.stderr)
        return 1
