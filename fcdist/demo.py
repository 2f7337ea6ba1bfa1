"""``fcdist demo``: the whole pipeline on the embedded default, locally, ending with a learning report.

synth -> model -> preprocess -> train (accelerate launch, as on a cluster) -> gather -> infer -> score.
Every step is the same stage entry point a user or a SLURM job runs; inputs already made are reused.

The report puts the untrained model's scores beside the trained one's, on the held-out rows (functions seen
in training, new values) and, when ``demo.unseen_functions`` keeps part of the synthetic catalogue out of
training, on rows that call only functions the model never saw. It is printed and written to
``runs/<name>/learning.{json,md}`` beside the trainer's ``loss.png``. The same command is the GPU learning
check (configs/jobs/learn-synth-gpu.yaml): only the config differs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from fcdist.atomic import write_text_atomic
from fcdist.config import JobConfig, add_config_arguments, load_config
from fcdist.data.xlam import heldout_score
from fcdist.layout import RunLayout
from fcdist.stages import Request, infer_command, local_train_command, plan, run_fcdist, run_task, score_command

DEFAULT_CONFIG = "configs/jobs/demo-cpu.yaml"
CATEGORIES = ("all", "simple", "multiple", "parallel", "parallel-multiple")


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def unseen_path(config: JobConfig) -> Path:
    """Where the rows that call kept-out functions go: beside data.source."""
    source = Path(config.data.source)
    return source.with_name(f"{source.stem}.unseen-functions.jsonl")


def is_kept_out(function_name: str, fraction: float) -> bool:
    """A fixed part of the catalogue, chosen by a hash of the function's name (as rows are by their id)."""
    return heldout_score(f"function:{function_name}") < fraction


def split_by_function(rows: list[dict], fraction: float) -> tuple[list[dict], list[dict]]:
    """(training rows: no kept-out function among their tools, unseen rows: every call is to a kept-out one).

    Rows that mix both are dropped, so training never sees a kept-out name, not even as an unused tool.
    """
    train, unseen = [], []
    for row in rows:
        tools = [tool["name"] for tool in json.loads(row["tools"])]
        calls = [call["name"] for call in json.loads(row["answers"])]
        if not any(is_kept_out(name, fraction) for name in tools):
            train.append(row)
        elif calls and all(is_kept_out(name, fraction) for name in calls):
            unseen.append(row)
    return train, unseen


def write_jsonl(rows: list[dict], path: Path) -> None:
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def make_data(config: JobConfig) -> None:
    """Synthetic rows at data.source (and the unseen-function rows beside it), unless the file exists."""
    from fcdist.data.synth import generate_rows

    source = Path(config.data.source)
    if source.exists():
        return
    demo = config.demo
    step(f"synth: {demo.synth_rows} rows (seed {demo.synth_seed}) -> {source}")
    rows = generate_rows(demo.synth_rows, demo.synth_seed)
    source.parent.mkdir(parents=True, exist_ok=True)
    if demo.unseen_functions > 0:
        rows, unseen = split_by_function(rows, demo.unseen_functions)
        write_jsonl(unseen, unseen_path(config))
        print(f"{len(unseen)} rows call only the {demo.unseen_functions:.0%} of functions kept out of training "
              f"-> {unseen_path(config)}")
    write_jsonl(rows, source)


def make_model(config: JobConfig) -> None:
    if not Path(config.model.name_or_path).exists():
        step(f"model: random-init {config.demo.model_size} -> {config.model.name_or_path}")
        run_fcdist(["tiny-model", "--out", config.model.name_or_path, "--size", config.demo.model_size,
                    "--seed", str(config.demo.synth_seed)])


def run_chain(config: JobConfig, config_args: list[str], first: str | None = None, last: str | None = None) -> None:
    """The chain's stages (fcdist/stages.py) from ``first`` to ``last`` on this machine, one task after the other
    (none where ``first`` is not in this config's chain); training under ``accelerate launch`` exactly as users
    and the SLURM template start it."""
    jobs = plan(config, Request())
    names = [job.stage.name for job in jobs]
    if first is not None and first not in names:
        return
    start, end = names.index(first) if first else 0, names.index(last) + 1 if last else len(jobs)
    for job in jobs[start:end]:
        step(job.stage.name)
        if job.stage.commands is None:
            command = local_train_command(config.distributed.accelerate_config, config_args)
            print("$ " + " ".join(command), flush=True)
            subprocess.run(command, check=True)
        else:
            for shard in range(job.tasks):
                run_task(job.stage.name, config_args, shard, job.num_shards or 1)


def evaluation_sets(config: JobConfig) -> dict[str, Path]:
    sets = {"seen functions": RunLayout.of(config).heldout}
    if unseen_path(config).is_file():
        sets["unseen functions"] = unseen_path(config)
    return sets


def evaluate(config: JobConfig, common: list[str]) -> dict[str, dict[str, dict]]:
    """Score reports by model (untrained, trained) and by evaluation set."""
    models = {"untrained": ["--model", config.model.name_or_path], "trained": ["--run", str(config.run_dir)]}
    reports: dict[str, dict[str, dict]] = {}
    for model, model_args in models.items():
        for name, gold in evaluation_sets(config).items():
            slug = f"{model}-{name.replace(' ', '-')}"
            step(f"infer + score: {model} model, held-out rows with {name}")
            predictions, report = RunLayout.of(config).evaluation(slug)
            run_fcdist(infer_command(model_args, common, gold, predictions))
            run_fcdist(score_command(gold, predictions, report))
            reports.setdefault(name, {})[model] = json.loads(report.read_text())
    return reports


def rates(report: dict, category: str) -> dict | None:
    return report if category == "all" else report["by_category"].get(category)


def learning_table(reports: dict[str, dict[str, dict]]) -> str:
    """One markdown table: per evaluation set and call shape, each rate as untrained -> trained."""
    lines = ["| held-out rows | shape | n | parse rate | name accuracy | exact match |", "|---|---|--:|--:|--:|--:|"]
    for name, by_model in reports.items():
        for category in CATEGORIES:
            before, after = rates(by_model["untrained"], category), rates(by_model["trained"], category)
            if after is None:
                continue
            cells = [f"{before[key]:.1%} -> {after[key]:.1%}" for key in ("parse_rate", "name_accuracy", "exact_match")]
            lines.append(f"| {name} | {category} | {after['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def training_summary(metrics: Path, window: int = 3) -> dict:
    """Mean training loss of the first and last few logged steps, steps and training wall time."""
    from fcdist.train.metrics import read_metrics

    lines = [line for line in read_metrics(metrics) if line.get("loss") is not None]
    losses = [line["loss"] for line in lines]
    return {"loss_start": sum(losses[:window]) / len(losses[:window]), "loss_end": sum(losses[-window:]) / len(losses[-window:]),
            "steps": lines[-1]["step"], "seconds": lines[-1]["time"] - lines[0]["time"] + lines[0]["window_s"]}


def example_misses(reports: dict[str, dict[str, dict]], per_set: int = 5) -> str:
    """The first few rows the trained model got wrong in each set, with the rule each broke: where to look next."""
    lines = []
    for name, by_model in reports.items():
        misses = [row for row in by_model["trained"]["per_row"] if not row["correct"]][:per_set]
        lines += [f"- {name}, {row['category']}, id {row['id']}: {row['reason']}" for row in misses]
    return "\n".join(lines) + "\n" if lines else "none\n"


def write_learning_report(config: JobConfig, reports: dict[str, dict[str, dict]]) -> str:
    run = config.run_dir
    training = training_summary(run / "metrics.jsonl")
    manifest = json.loads((run / "manifest.json").read_text())
    markdown = (f"# Learning report: {config.output.name} (untrained -> trained)\n\n{learning_table(reports)}\n"
                f"Training: {training['steps']} steps in {training['seconds'] / 60:.1f} min; loss {training['loss_start']:.3f} -> "
                f"{training['loss_end']:.3f} (mean of the first and last logged steps); curve in loss.png.\n\nSome misses of the trained model (per-row reasons in score/*.json):\n\n"
                f"{example_misses(reports)}")
    summary = {
        "run": str(run), "model": config.model.name_or_path, "model_size": config.demo.model_size,
        "lora": config.lora.enabled, "training": training, "run_manifest": manifest,
        "scores": {name: {model: {key: value for key, value in report.items() if key != "per_row"}
                          for model, report in by_model.items()} for name, by_model in reports.items()},
    }
    write_text_atomic(run / "learning.json", json.dumps(summary, indent=2) + "\n")
    write_text_atomic(run / "learning.md", markdown)
    return markdown


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist demo",
        usage="fcdist demo [--config C] [key=value ...]",
        description="Run synth -> model -> preprocess -> train -> gather -> infer -> score locally and print how "
                    "the trained model compares with the untrained one.",
    )
    add_config_arguments(parser, f"job config (default: {DEFAULT_CONFIG})", required=False, default=DEFAULT_CONFIG)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_config(args.config, args.overrides)
    common = ["--config", args.config, *args.overrides]

    make_data(config)
    try:
        make_model(config)
        run_chain(config, common, last="gather")  # the chain's infer and score: evaluate() runs them per model and set
        reports = evaluate(config, common)
        run_chain(config, common, first="bfcl-convert")  # the BFCL stages, where eval.bfcl_dir names a folder
    except RuntimeError as e:
        raise SystemExit(f"fcdist demo: {e}") from None
    step(f"learning report ({config.run_dir / 'learning.md'})")
    print(write_learning_report(config, reports), end="")
    return 0
