"""``fcdist <stage> ...``: one subcommand per pipeline stage, each the stage module's own entry point.

Stage modules are imported only when their subcommand runs, so ``fcdist score --help`` does not pay for
importing torch and DeepSpeed.
"""

from __future__ import annotations

import importlib
import sys

from fcdist.errors import InputError

# subcommand -> (module with build_parser() and main(argv), one-line summary)
STAGES = {
    "synth": ("fcdist.data.synth", "write synthetic xlam-format rows"),
    "tiny-model": ("fcdist.model.tiny", "build a tiny random Phi-3 model and BPE tokenizer for CPU runs"),
    "render": ("fcdist.data.render", "render rows as prompt/completion/text JSON lines"),
    "inspect": ("fcdist.preprocess.inspect", "show one tokenized row with its loss tokens marked"),
    "preprocess": ("fcdist.preprocess.shards", "tokenize and pack rows into Arrow shards + manifest"),
    "train": ("fcdist.train.trainer", "train (run under accelerate launch for several processes)"),
    "gather": ("fcdist.gather", "turn a training checkpoint into a LoRA adapter or merged model"),
    "infer": ("fcdist.infer", "generate calls for held-out prompts"),
    "score": ("fcdist.score", "score generated calls against gold rows"),
    "eval": ("fcdist.evaluate", "evaluate on a benchmark's own files: `fcdist eval bfcl` (BFCL's AST categories)"),
    "submit": ("fcdist.submit", "submit the pipeline's stages to SLURM with submitit"),
    "plan": ("fcdist.plan", "dry-run a job: choices, memory per GPU, commands, and why it could not run"),
    "demo": ("fcdist.demo", "run the whole pipeline locally on the tiny model and synthetic data"),
}

USAGE = "usage: fcdist <stage> [--help] [args...]\n\nstages:\n" + "\n".join(
    f"  {name:<11} {summary}" for name, (_, summary) in STAGES.items()
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"fcdist: unknown stage '{stage}'\n\n{USAGE}", file=sys.stderr)
        return 2
    module = importlib.import_module(STAGES[stage][0])
    try:
        return module.main(rest) or 0
    except InputError as e:  # the stage's own handlers keep theirs; this catches what reaches the top
        print(f"fcdist {stage}: error: {one_line(e)}", file=sys.stderr)
        return 1


def one_line(error: Exception) -> str:
    """The message on one line (a message quoting a file's text may carry its newlines)."""
    return " ".join(str(error).splitlines())


if __name__ == "__main__":
    sys.exit(main())
