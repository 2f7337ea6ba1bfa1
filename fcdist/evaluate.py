"""``fcdist eval bfcl``: a model on the Berkeley Function Calling Leaderboard's Python AST categories.

    fcdist eval bfcl (--run R | --model M) [--bfcl DIR] --out OUTDIR [--categories C,C] [--shard I --num-shards N] [key=value ...]
    fcdist eval bfcl --convert-only [--bfcl DIR] --out OUTDIR [--categories C,C] [key=value ...]
    fcdist eval bfcl --score-only [--num-shards N] --out OUTDIR

Three steps, which the pipeline's BFCL stages (eval.bfcl_dir; fcdist/stages.py) run one per job:

1. convert DIR (default: the config's eval.bfcl_dir) into OUTDIR/gold.jsonl, one xlam row per case
   (fcdist/data/bfcl.py), under the config's data.on_bad_row; OUTDIR/conversion.json counts the cases read,
   converted and skipped per category;
2. ``fcdist infer`` on those rows into OUTDIR/predictions.jsonl: the inference stage itself, with its
   training-time prompt, sharding and resuming;
3. once the predictions hold every case, fcdist score's BFCL rules (``fcdist score --rules bfcl``) into
   OUTDIR/report.json and .md, with the conversion's counts: per category, the cases scored of those read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fcdist.atomic import write_text_atomic
from fcdist.config import JobConfig, add_config_arguments, load_config, load_run_config
from fcdist.data.bfcl import CATEGORIES, read_folder
from fcdist.data.xlam import read_rows
from fcdist.errors import InputError
from fcdist.infer.predictions import complete_records, merge_problems
from fcdist.layout import EvalLayout
from fcdist.score import score as score_rows
from fcdist.score.predictions import read_predictions
from fcdist.score.report import markdown_table
from fcdist.stages import infer_command, run_fcdist


def convert(bfcl_dir: str | Path, layout: EvalLayout, categories: list[str] | None, on_bad_row: str) -> dict:
    """Step 1: the gold rows and the counts; returns the counts (conversion.json)."""
    rows, conversion = read_folder(bfcl_dir, categories, on_bad_row)
    if conversion.skips.skipped:
        print(f"{bfcl_dir}: {conversion.skips.summary()}", file=sys.stderr)
    if not rows:
        raise InputError(f"{bfcl_dir}: none of the {sum(conversion.read.values())} cases read could be converted")
    write_text_atomic(layout.gold, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    summary = {"bfcl_dir": str(bfcl_dir), **conversion.summary()}
    write_text_atomic(layout.conversion, json.dumps(summary, indent=2) + "\n")
    counts = ", ".join(f"{name} {c['converted']}/{c['read']}" for name, c in summary["by_category"].items())
    print(f"{layout.gold}: {summary['converted']} of {summary['read']} BFCL cases converted ({counts})")
    return summary


def predictions_complete(layout: EvalLayout) -> bool:
    """Whether predictions.jsonl answers every gold case once (unsharded, or merged by the last shard)."""
    if not layout.predictions.is_file():
        return False
    ids = [str(json.loads(line)["id"]) for line in layout.gold.read_text(encoding="utf-8").splitlines() if line.strip()]
    return not merge_problems(complete_records(layout.predictions)[0], ids)


def cases_table(conversion: dict) -> str:
    lines = ["| category | scored | read | skipped |", "|---|--:|--:|--:|"]
    rows = [*conversion["by_category"].items(), ("all", conversion)]
    lines += [f"| {name} | {c['converted']} | {c['read']} | {c['read'] - c['converted']} |" for name, c in rows]
    return "\n".join(lines) + "\n"


def score(layout: EvalLayout, num_shards: int = 1) -> dict:
    """Step 3: merge the shard files (checking every id) when sharded, score by BFCL's rules, and write the
    report with the conversion's counts, so it states what it scored of what was read."""
    if num_shards > 1:
        run_fcdist(["infer", "--merge-shards", "--num-shards", str(num_shards), "--data", str(layout.gold),
                    "--out", str(layout.predictions)])
    conversion = json.loads(layout.conversion.read_text())
    rows, _ = read_rows(str(layout.gold), on_bad_row="error")
    completions = read_predictions(str(layout.predictions), {str(row.id) for row in rows})
    skipped = conversion["read"] - conversion["converted"]  # what fcdist score's CLI cannot know: cases left out
    report = {"gold": str(layout.gold), "predictions": str(layout.predictions),
              **score_rows(rows, completions, rules="bfcl", skipped=skipped), "cases": conversion}
    write_text_atomic(layout.report, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    markdown = (f"{markdown_table(report)}\nBFCL cases scored of those read (skipped: data.on_bad_row=skip):\n\n"
                f"{cases_table(conversion)}")
    write_text_atomic(layout.report.with_suffix(".md"), markdown)
    print(markdown, end="")
    return report


# ---------------------------------------------------------------- command line


def category_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CATEGORIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: categories are {','.join(CATEGORIES)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fcdist eval", usage="fcdist eval bfcl [--help] ...",
                                     description="Evaluate a model on a benchmark's own files.")
    suites = parser.add_subparsers(dest="suite", required=True, metavar="bfcl")
    bfcl = suites.add_parser(
        "bfcl", prog="fcdist eval bfcl", help="the Berkeley Function Calling Leaderboard's Python AST categories",
        usage="fcdist eval bfcl (--run RUN_DIR | --model DIR) [--bfcl DIR] --out OUTDIR [--categories C,C] "
              "[--shard I --num-shards N] [--config C] [key=value ...]\n"
              "       fcdist eval bfcl --convert-only [--bfcl DIR] --out OUTDIR [--categories C,C] [key=value ...]\n"
              "       fcdist eval bfcl --score-only [--num-shards N] --out OUTDIR",
        description="Convert a folder of BFCL files (Python AST categories) to gold rows, answer them with "
                    "fcdist infer and score them by BFCL's rules.",
        epilog="OUTDIR holds gold.jsonl, conversion.json, predictions.jsonl and report.json/.md; per category "
               "the report gives the rates and how many cases were scored of how many read.")
    model = bfcl.add_mutually_exclusive_group()
    model.add_argument("--run", type=Path, metavar="RUN_DIR", help="a run folder (its gathered model and config)")
    model.add_argument("--model", type=Path, metavar="DIR", help="a model or PEFT adapter folder")
    bfcl.add_argument("--bfcl", metavar="DIR", help="folder of BFCL files with possible_answer/ (default: eval.bfcl_dir)")
    bfcl.add_argument("--out", type=Path, required=True, metavar="OUTDIR", help="folder for the gold rows, predictions and report")
    # comma-separated rather than nargs="+", which would swallow the key=value overrides that follow
    bfcl.add_argument("--categories", type=category_list, metavar="C,C",
                      help=f"categories to read, comma-separated, of {','.join(CATEGORIES)} (default: every one the folder has)")
    bfcl.add_argument("--shard", type=int, metavar="I", help="inference shard (as fcdist infer)")
    bfcl.add_argument("--num-shards", type=int, metavar="N", help="inference shards (as fcdist infer)")
    steps = bfcl.add_mutually_exclusive_group()
    steps.add_argument("--convert-only", action="store_true", help="step 1 only: write gold.jsonl and conversion.json")
    steps.add_argument("--score-only", action="store_true", help="step 3 only: merge N shard files, then score")
    add_config_arguments(bfcl, "job config (data.on_bad_row, eval.bfcl_dir, infer.*); default: the run's, else defaults",
                         required=False)
    bfcl.set_defaults(usage=bfcl)  # usage errors name `fcdist eval bfcl`
    return parser


def job_config(args: argparse.Namespace) -> JobConfig:
    if args.run and not args.config:
        return load_run_config(args.run, args.overrides)
    return load_config(args.config, args.overrides)


def run(args: argparse.Namespace) -> None:
    layout = EvalLayout(args.out)
    if args.score_only:
        score(layout, args.num_shards or 1)
        return
    config = job_config(args)
    bfcl_dir = args.bfcl or config.eval.bfcl_dir
    if bfcl_dir is None:
        args.usage.error("give --bfcl DIR (or eval.bfcl_dir in the config)")
    if not args.convert_only and not (args.run or args.model):
        args.usage.error("give --run RUN_DIR or --model DIR (or --convert-only)")
    convert(bfcl_dir, layout, args.categories, config.data.on_bad_row)
    if args.convert_only:
        return
    config_args = (["--config", args.config] if args.config else []) + args.overrides
    model = ["--run", str(args.run)] if args.run else ["--model", str(args.model)]
    run_fcdist(infer_command(model, config_args, layout.gold, layout.predictions, args.shard, args.num_shards))
    if predictions_complete(layout):
        score(layout)
    else:
        print(f"{layout.predictions}: not every shard is done yet; the last one scores, or run "
              f"`fcdist eval bfcl --score-only --num-shards {args.num_shards} --out {args.out}`")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.shard is None) != (args.num_shards is None) and not args.score_only:
        args.usage.error("--shard and --num-shards go together")
    try:
        run(args)
    except (ValueError, OSError) as e:  # InputError and ConfigError too; score's own errors are ValueErrors
        print(f"fcdist eval bfcl: error: {' '.join(str(e).splitlines())}", file=sys.stderr)
        return 1
    except RuntimeError as e:  # the failed stage printed its reason; this names the command
        print(f"fcdist eval bfcl: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
