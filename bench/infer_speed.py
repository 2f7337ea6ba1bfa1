"""Inference speed: `fcdist infer` beside one prompt at a time and raw ``model.generate`` on the same prompts.

    python bench/infer_speed.py [--size 100m|phi3-mini|small|tiny] [--model DIR] [--prompts 256] [--batch-size 256]
                                [--max-new-tokens 256] [--single 32] [--out bench/results/infer-speed-h200-DATE]

Hardware: one CUDA GPU for the numbers that matter (issue H's workload: ``--size 100m``, 256 prompts at batch
256, a few minutes on an H200; the Phi-3-mini row: ``--size phi3-mini``, Phi-3-mini-128k's exact shape in bf16).
It also runs on a CPU with ``--size tiny --prompts 32 --max-new-tokens 16 --single 8`` (under a minute), which
checks that it works; CPU ratios say little about a GPU, where per-step overheads and the cache dominate.

The model is ``fcdist tiny-model --size S`` (random weights: speed does not depend on their values) unless
``--model`` names a folder; the prompts are synthetic xlam rows (``fcdist synth``, seed 1) rendered as training
renders them. A random model seldom writes eos or ``</calls>``, so nearly every row runs ``--max-new-tokens``
steps in every row of the table alike. One table, also written as <out>.md and <out>.json:

- ``one at a time``: ``generate_calls`` at batch 1 (what the seed did) on ``--single`` of the prompts;
- ``fcdist infer (dynamic|static)``: ``fcdist.infer.infer`` end to end (tokenizing, batching, generating, the
  predictions file with its fsync), ``infer.cache`` set; its rate is what `fcdist infer` prints (model loading
  is apart, in ``load s``; ``first batch s`` includes the GPU's warm-up and, with a static cache on CUDA, compile);
- ``raw generate (dynamic|static)``: ``model.generate`` on the same padded batches, eos only, no stop string,
  nothing written, after one untimed warm-up run (so compile and warm-up are not in it).

``x one`` divides each rate by the one-at-a-time rate; ``same ids`` compares the completions of the rows that
both ran with the one-at-a-time ones. Expected on an H200 (issue H): fcdist infer (static) at 150 prompts/s
or more on ``--size 100m``, within about a quarter of raw static generate once its first batch is paid.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a plain checkout

SIZES = ("tiny", "small", "100m", "phi3-mini")


@dataclass
class Row:
    name: str
    prompts: int
    seconds: float
    attention: str
    same_ids: str = "-"
    first_batch_s: float | None = None
    load_s: float | None = None
    first_batch_prompts: int | None = None

    @property
    def rate(self) -> float:
        return self.prompts / self.seconds

    @property
    def after_first_rate(self) -> float | None:
        """Prompts/s once the first batch (CUDA warm-up, compile) is paid: what a long job runs at."""
        if self.first_batch_s is None or self.prompts <= self.first_batch_prompts:
            return None
        return (self.prompts - self.first_batch_prompts) / (self.seconds - self.first_batch_s)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/infer_speed.py",
        usage="python bench/infer_speed.py [--size S | --model DIR] [--prompts N] [--batch-size B] "
              "[--max-new-tokens T] [--single K] [--out PATH]",
        description="fcdist infer vs one prompt at a time vs raw model.generate, on the same prompts; one table.")
    parser.add_argument("--size", choices=SIZES, help="fcdist tiny-model size to build (default: 100m on a GPU, tiny on a CPU)")
    parser.add_argument("--model", type=Path, metavar="DIR", help="an existing full model folder instead of building one")
    parser.add_argument("--prompts", type=int, default=256, help="held-out prompts (default 256)")
    parser.add_argument("--batch-size", type=int, help="infer.batch_size (default: all prompts in one batch)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="infer.max_new_tokens (default 256)")
    parser.add_argument("--single", type=int, default=32, help="prompts decoded one at a time for that row (default 32)")
    parser.add_argument("--out", type=Path, metavar="PATH", help="also write PATH.md and PATH.json")
    return parser


def job_config(model_dir: Path, args: argparse.Namespace, cache: str):
    from fcdist.config import load_config

    return load_config(None, [f"model.name_or_path={model_dir}", f"infer.batch_size={args.batch_size}",
                              f"infer.max_new_tokens={args.max_new_tokens}", f"infer.cache={cache}"])


def write_rows(path: Path, count: int) -> list:
    from fcdist.data.synth import generate_rows
    from fcdist.data.xlam import parse_row

    raw = generate_rows(count, seed=1)
    path.write_text("".join(json.dumps(r) + "\n" for r in raw))
    return [parse_row(r, "bench") for r in raw]


def fcdist_row(model_dir: Path, data: Path, args: argparse.Namespace, cache: str, work: Path,
               label: str = "") -> tuple[Row, dict]:
    """``fcdist infer`` end to end, as the CLI runs it; returns its row and the completions by id."""
    from fcdist.infer import infer
    from fcdist.runtime import inference_attention, pick_device

    config = job_config(model_dir, args, cache)
    out = work / f"pred-{cache}{label}.jsonl"
    summary = infer(model_dir, data, out, config, progress=False)
    attention = inference_attention(config.model.attn_implementation, cache, pick_device())
    row = Row(f"fcdist infer ({cache}{label})", summary.generated, summary.seconds, attention,
              first_batch_s=summary.first_batch_seconds, load_s=summary.load_seconds,
              first_batch_prompts=min(args.batch_size, summary.generated))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return row, {str(r["id"]): r["completion"] for r in records}


def single_row(model, tokenizer, prompts: list[str], ids: list[str], args: argparse.Namespace) -> tuple[Row, dict]:
    from fcdist.infer.generate import generate_calls

    started = time.perf_counter()
    generations = [g for batch in generate_calls(model, tokenizer, prompts, args.max_new_tokens, 1) for g in batch]
    row = Row("one at a time", len(prompts), time.perf_counter() - started, model.config._attn_implementation)
    return row, {ids[g.index]: g.completion for g in generations}


def raw_row(model, tokenizer, prompts: list[str], args: argparse.Namespace, cache: str) -> Row:
    """``model.generate`` on fcdist's batches (longest first, left-padded), eos only; the second of two runs."""
    import torch

    from fcdist.infer.generate import greedy_settings, pick_compile

    settings = greedy_settings(model, tokenizer, args.max_new_tokens, None, cache, pick_compile("auto", cache, model))
    settings.stop_strings = None
    ids = tokenizer(prompts)["input_ids"]
    ids.sort(key=len, reverse=True)
    batches = [tokenizer.pad({"input_ids": ids[i:i + args.batch_size]}, return_tensors="pt").to(model.device)
               for i in range(0, len(ids), args.batch_size)]
    for timed in (False, True):
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.inference_mode():
            for batch in batches:
                model.generate(**batch, generation_config=settings)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
    return Row(f"raw generate ({cache})", len(prompts), time.perf_counter() - started, model.config._attn_implementation)


def agreement(found: dict, reference: dict) -> str:
    both = [i for i in reference if i in found]
    differ = sum(found[i] != reference[i] for i in both)
    return f"{'yes' if differ == 0 else 'NO'} ({len(both) - differ}/{len(both)})"


def table(rows: list[Row], baseline: float, header: str) -> str:
    lines = [header, "", "| run | prompts | prompts/s | after first batch | x one | same ids | first batch s | load s "
                         "| attention |", "|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for r in rows:
        lines.append(f"| {r.name} | {r.prompts} | {r.rate:.2f} | {fmt(r.after_first_rate)} | {r.rate / baseline:.2f} | {r.same_ids} | "
                     f"{fmt(r.first_batch_s)} | {fmt(r.load_s)} | {r.attention} |")
    return "\n".join(lines)


def run(args: argparse.Namespace, work: Path) -> tuple[list[Row], str]:
    import torch

    from fcdist.infer import row_prompts
    from fcdist.model.load import load_model_for_inference

    model_dir = args.model or work / "model"
    if args.model is None:
        from fcdist.model.tiny import build_tiny_model

        build_tiny_model(model_dir, seed=0, size=args.size)
    data = work / "heldout.jsonl"
    rows = write_rows(data, args.prompts)
    ids = [str(r.id) for r in rows]
    fcdist_rows = [fcdist_row(model_dir, data, args, cache, work) for cache in ("dynamic", "static")]
    # once more in the same process: compiled graphs and the GPU's warm-up are paid, as in a long job
    fcdist_rows.append(fcdist_row(model_dir, data, args, "static", work, ", second run"))
    results = []
    for cache in ("dynamic", "static"):  # each with the attention fcdist picks for that cache
        model, tokenizer = load_model_for_inference(model_dir, job_config(model_dir, args, cache))
        prompts = row_prompts(rows, job_config(model_dir, args, cache), tokenizer)
        if cache == "dynamic":
            step = max(1, len(prompts) // args.single)  # spread over the lengths
            one, reference = single_row(model, tokenizer, prompts[::step][:args.single], ids[::step][:args.single], args)
        results.append(raw_row(model, tokenizer, prompts, args, cache))
        del model
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    for row, completions in fcdist_rows:
        row.same_ids = agreement(completions, reference)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    header = (f"{device}, model {args.model or args.size}, {args.prompts} prompts, batch {args.batch_size}, "
              f"max_new_tokens {args.max_new_tokens}, torch {torch.__version__}")
    return [one, *(r for r, _ in fcdist_rows), *results], header


def main(argv: list[str] | None = None) -> int:
    import torch

    args = build_parser().parse_args(argv)
    args.size = args.size or ("100m" if torch.cuda.is_available() else "tiny")
    args.batch_size = args.batch_size or args.prompts
    with tempfile.TemporaryDirectory(prefix="infer-speed-") as work:
        rows, header = run(args, Path(work))
    text = table(rows, rows[0].rate, header)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text + "\n")
        record = {"header": header,
                  "rows": [asdict(r) | {"prompts_per_s": r.rate, "after_first_batch": r.after_first_rate} for r in rows]}
        args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
