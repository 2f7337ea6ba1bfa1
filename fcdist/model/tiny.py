"""A small random-weight Phi-3 model with a real BPE tokenizer, for tests, the CPU demo and learning checks.

    fcdist tiny-model --out runs/tiny-model --seed 0 --rows 2000 [--size tiny|small|100m|phi3-mini]

The folder it writes loads through ``AutoModelForCausalLM.from_pretrained`` and
``AutoTokenizer.from_pretrained`` exactly like microsoft/Phi-3-mini, so every stage (LoRA targets, padding,
eos handling, generation) runs the real code path in seconds on a CPU. The tokenizer is a byte-level BPE
trained on rendered synthetic rows (``fcdist synth``), sized so that it splits this data into about as many
tokens as a Llama-style 32k tokenizer does; sequence lengths, packing and truncation then behave as they
would on the real model. Like Llama's and Phi-3's tokenizers it splits numbers into single digits, so an id,
zip code or ISBN is spelled the same way in the query and in the call, whatever surrounds it.
The sizes: ``tiny`` for tests, ``small`` for the CPU demo (trained from scratch in minutes), ``100m`` for the
GPU learning check (configs/jobs/learn-synth-gpu.yaml), ``phi3-mini`` (Phi-3-mini's exact shape, random
bf16 weights) for the GPU speed benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import Phi3Config, Phi3ForCausalLM, PreTrainedTokenizerFast

from fcdist.atomic import replace_dir
from fcdist.data.render import render_text
from fcdist.data.synth import generate_rows

# Llama's layout of special tokens: unk 0, bos 1, eos 2; pad gets its own id instead of reusing eos.
UNK, BOS, EOS, PAD = "<unk>", "<s>", "</s>", "<pad>"
SPECIAL_TOKENS = (UNK, BOS, EOS, PAD)
# Measured on synthetic rows: 1536 merges with single digits give ~3.3 chars/token, what a Llama-style 32k
# vocab gives here.
VOCAB_SIZE = 1536
VOCAB_MULTIPLE = 64  # the embedding is padded like Phi-3's (32064 rows for 32011 tokens)
MAX_POSITIONS = 4096
MODEL_SIZES = {
    # ~1.2M parameters: a few dozen steps of 8 x 512 tokens train in seconds on 2 cores. Two layers are
    # enough for copy (induction) heads; four leave room for LoRA tests.
    "tiny": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4),
    # ~4.2M parameters: the CPU demo's model, trained from scratch (full fine-tuning) in a few minutes.
    "small": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4),
    # ~100M parameters (head size 64, like Phi-3's 96 in spirit): the GPU learning check.
    "100m": dict(hidden_size=768, intermediate_size=2560, num_hidden_layers=12, num_attention_heads=12),
    # Phi-3-mini-128k's exact shape (3.8B parameters, its 32064-row vocabulary), random weights in bf16: speed
    # benchmarks on a GPU (bench/train_speed.py), where throughput does not depend on the weights' values.
    "phi3-mini": dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=32, num_attention_heads=32,
                      vocab_size=32064),
}
# Sizes built directly in bf16 (an fp32 copy of 3.8B parameters would need 15 GB first).
BF16_SIZES = ("phi3-mini",)
INFO_FILE = "tiny_model_info.json"


def rendered_texts(rows: Iterable[dict]) -> list[str]:
    """Rows in the seed's training format, eos included, so the tokenizer sees what training feeds it."""
    return [render_text(r["query"], json.loads(r["tools"]), json.loads(r["answers"])) + EOS for r in rows]


def train_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Byte-level BPE: any text encodes without <unk> and decodes back to itself byte for byte."""
    bpe = Tokenizer(models.BPE(unk_token=UNK))
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=MAX_POSITIONS,
        clean_up_tokenization_spaces=False,  # the default would rewrite " ," as "," and break round trips
    )


def build_model(tokenizer: PreTrainedTokenizerFast, seed: int, size: str = "tiny") -> Phi3ForCausalLM:
    shape = dict(MODEL_SIZES[size])
    padded_vocab = shape.pop("vocab_size", -(-len(tokenizer) // VOCAB_MULTIPLE) * VOCAB_MULTIPLE)
    config = Phi3Config(
        vocab_size=padded_vocab,
        max_position_embeddings=MAX_POSITIONS,
        original_max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        num_key_value_heads=shape["num_attention_heads"],
        **shape,
    )
    torch.manual_seed(seed)
    dtype = torch.bfloat16 if size in BF16_SIZES else torch.float32
    return Phi3ForCausalLM._from_config(config, dtype=dtype)


def chars_per_token(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> float:
    tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    return sum(len(t) for t in texts) / tokens


def refuse_to_overwrite(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} exists and is not empty; pass --force to replace it")


def build_tiny_model(out_dir: str | Path, seed: int = 0, rows: int = 2000, force: bool = False, size: str = "tiny") -> Path:
    """Train the tokenizer on ``rows`` synthetic rows of ``seed``, init a ``size`` model from ``seed``, save to ``out_dir``."""
    if size not in MODEL_SIZES:
        raise ValueError(f"model size {size!r} is unknown (known: {', '.join(MODEL_SIZES)})")
    out = Path(out_dir)
    refuse_to_overwrite(out, force)
    build_dir = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(build_dir, ignore_errors=True)
    try:
        tokenizer = train_tokenizer(rendered_texts(generate_rows(rows, seed)))
        model = build_model(tokenizer, seed, size)
        tokenizer.save_pretrained(build_dir)
        model.save_pretrained(build_dir)
        held_out = rendered_texts(generate_rows(200, seed + 1))  # rows the tokenizer never saw
        info = describe(tokenizer, model, seed, rows, chars_per_token(tokenizer, held_out), size)
        (build_dir / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        replace_dir(build_dir, out)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return out


def describe(tokenizer: PreTrainedTokenizerFast, model: Phi3ForCausalLM, seed: int, rows: int, cpt: float, size: str) -> dict:
    """What ``tiny_model_info.json`` records; nothing run-dependent, so the same seed gives the same folder."""
    return {
        "made_by": "fcdist tiny-model",
        "seed": seed,
        "tokenizer_rows": rows,
        "tokenizer": "byte-level BPE with single digits, trained on rendered `fcdist synth` rows of this seed",
        "tokenizer_vocab": len(tokenizer),
        "model_vocab": model.config.vocab_size,
        "special_tokens": {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS},
        "chars_per_token_heldout": round(cpt, 3),
        "parameters": sum(p.numel() for p in model.parameters()),
        "architecture": "Phi3ForCausalLM",
        "size": size,
        **MODEL_SIZES[size],
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist tiny-model",
        usage="fcdist tiny-model --out DIR [--size tiny|small|100m|phi3-mini] [--seed S] [--rows N] [--force]",
        description="Build a small random-weight Phi-3 model and a BPE tokenizer trained on synthetic rows.",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (refused if it exists and is not empty)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed for the tokenizer's rows and the weights (default: 0)")
    parser.add_argument("--rows", type=int, default=2000, metavar="N", help="synthetic rows to train the tokenizer on (default: 2000)")
    parser.add_argument("--size", choices=list(MODEL_SIZES), default="tiny",
                        help="tiny: tests (~1.2M parameters); small: the CPU demo (~4.2M); 100m: the GPU learning check")
    parser.add_argument("--force", action="store_true", help="replace an existing, non-empty output folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        out = build_tiny_model(args.out, seed=args.seed, rows=args.rows, force=args.force, size=args.size)
    except FileExistsError as e:
        print(f"fcdist tiny-model: {e}", file=sys.stderr)
        return 1
    info = json.loads((out / INFO_FILE).read_text(encoding="utf-8"))
    print(f"wrote {out}: {info['parameters']:,} parameters, vocab {info['tokenizer_vocab']}, "
          f"{info['chars_per_token_heldout']} chars/token, {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
