"""The stage chain, written once: preprocess -> train -> gather -> infer -> score, each stage with its
arguments (built from the run layout), its array and the stage it waits for; where the config names a BFCL
folder (eval.bfcl_dir), bfcl-convert -> bfcl-infer (an array) -> bfcl-score follow (fcdist eval bfcl's steps).

Three walkers run it: ``fcdist demo`` on this machine (:func:`run_task`, one stage after the other),
``fcdist submit`` as submitit jobs (fcdist/submit.py) and slurm/pipeline.sh with sbatch, which evals the
lines ``python -m fcdist.stages sbatch-lines`` prints (:func:`sbatch_jobs`). Adding a stage is one entry in
STAGES (and, for sbatch, a template slurm/<name>.sh like slurm/gather.sh). Inside a template's job,
``python -m fcdist.stages run STAGE ...`` runs the stage's commands, as the submitit job and the demo do.

    python -m fcdist.stages sbatch-lines [--nodes=K] [--gpus-per-node=G] [--time=T] [--infer-shards=M] --config C [key=value ...]
        check the config and the training request (sbatch --test-only), make <run>/slurm/, and print
        RUN=<run folder>, then one `submit STAGE AFTER SBATCH-ARGUMENTS...` line per stage, shell-quoted
    python -m fcdist.stages run STAGE [--shard I] [--num-shards N] --config C [key=value ...]
        run task I of N of STAGE's fcdist commands in this process
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from fcdist.config import ConfigError, JobConfig, add_config_arguments, load_config
from fcdist.layout import RunLayout

LAUNCH_SCRIPT = "launch/train.py"  # relative: jobs run from the repository root, like the configs' paths
# One preemption protocol for both launch paths: SIGUSR2 this many seconds before the time limit (SLURM may
# send it up to 60 s early), then the run's STOP file, a save at the next step, exit 0, requeue, resume.
# slurm/train.sh says the same in its #SBATCH --signal line (a test holds them equal); raise both where a
# step plus a checkpoint takes longer.
PREEMPT_SIGNAL, PREEMPT_MARGIN_S = "USR2", 300
SBATCH_ALWAYS = ["--parsable", "--kill-on-invalid-dep=yes"]  # a failed stage cancels those after it


class SubmitError(RuntimeError):
    """A job that cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class Request:
    """What a chain asks of the cluster: the options of slurm/pipeline.sh and ``fcdist submit``."""

    nodes: int = 1
    """Training nodes."""
    gpus_per_node: int = 0
    """GPUs per training node; each inference task gets one when this is above 0."""
    time: str | None = None
    """The training job's time limit (sbatch --time); None: the partition's."""
    infer_shards: int = 2
    """Inference array tasks."""


@dataclass(frozen=True)
class Resources:
    """What one job of a stage asks for."""

    nodes: int = 1
    gpus_per_node: int = 0
    time: str | None = None

    def sbatch_options(self) -> list[str]:
        return ([f"--nodes={self.nodes}"] if self.nodes > 1 else []) + \
            ([f"--gpus-per-node={self.gpus_per_node}"] if self.gpus_per_node else []) + \
            ([f"--time={self.time}"] if self.time else [])


# ---------------------------------------------------------------- the commands of each stage


def infer_command(model: list[str], config_args: list[str], data: Path, out: Path,
                  shard: int | None = None, num_shards: int | None = None) -> list[str]:
    """``fcdist infer`` of ``model`` (``--run R`` or ``--model M``) on ``data`` into ``out``."""
    sharding = ["--shard", str(shard), "--num-shards", str(num_shards)] if num_shards else []
    return ["infer", *model, "--data", str(data), "--out", str(out), *sharding, "--no-progress", *config_args]


def score_command(gold: Path, predictions: Path, report: Path) -> list[str]:
    return ["score", "--gold", str(gold), "--predictions", str(predictions), "--out", str(report)]


def preprocess_commands(layout: RunLayout, config_args: list[str], shard: int, num_shards: int) -> list[list[str]]:
    return [["preprocess", *config_args, "--shard", str(shard), "--num-shards", str(num_shards)]]


def gather_commands(layout: RunLayout, config_args: list[str], shard: int, num_shards: int) -> list[list[str]]:
    return [["gather", "--run", str(layout.root)]]


def infer_commands(layout: RunLayout, config_args: list[str], shard: int, num_shards: int) -> list[list[str]]:
    return [infer_command(["--run", str(layout.root)], config_args, layout.heldout, layout.predictions, shard, num_shards)]


def bfcl_convert_commands(layout: RunLayout, config_args: list[str], shard: int, num_shards: int) -> list[list[str]]:
    return [["eval", "bfcl", "--convert-only", "--out", str(layout.bfcl.root), *config_args]]


def bfcl_infer_commands(layout: RunLayout, config_args: list[str], shard: int, num_shards: int) -> list[list[str]]:
    return [infer_command(["--run", str(layout.root)], config_args, layout.bfcl.gold, layout.bfcl.predictions, shard,
                          num_shards)]


def bfcl_score_commands(layout: RunLayout, config_args: list[str], shard: int, num_shards: int) -> list[list[str]]:
    """``num_shards``: the bfcl-infer array's size, whose shard files it merges again (as score does)."""
    return [["eval", "bfcl", "--score-only", "--num-shards", str(num_shards), "--out", str(layout.bfcl.root)]]


def score_commands(layout: RunLayout, config_args: list[str], shard: int, num_shards: int) -> list[list[str]]:
    """``num_shards``: the infer array's size. Its last task merged the shard files already; merging again
    fails the job, naming the rows, if any held-out row is missing or answered twice."""
    merge = [["infer", "--merge-shards", "--num-shards", str(num_shards), "--data", str(layout.heldout),
              "--out", str(layout.predictions)]] if num_shards > 1 else []
    return merge + [score_command(layout.heldout, layout.predictions, layout.report)]


# ---------------------------------------------------------------- the chain


@dataclass(frozen=True)
class Stage:
    """One link of the chain."""

    name: str
    """The fcdist subcommand; also the job name fcdist-<name>, the template slurm/<name>.sh and the log <name>-<job>.out."""
    after: str | None
    """The stage whose success it waits for."""
    array: bool
    """One job per shard (an array), or one job."""
    shards: Callable[[JobConfig, Request], int] | None
    """The --num-shards its template and commands take: the array's size, or (score) the shards to merge."""
    commands: Callable[[RunLayout, list[str], int, int], list[list[str]]] | None
    """The fcdist commands of task (shard, num_shards); None for training, launched per node (fcdist/submit.py)."""
    resources: Callable[[Request], Resources] = lambda request: Resources()
    """What each of its jobs asks for."""
    wanted: Callable[[JobConfig], bool] = lambda config: True
    """Whether a config's chain has it (the BFCL stages: when eval.bfcl_dir names a folder)."""


def one_gpu_per_task(request: Request) -> Resources:
    """An inference task: one GPU where training has GPUs (generation runs on one device)."""
    return Resources(gpus_per_node=min(request.gpus_per_node, 1))


def names_a_bfcl_folder(config: JobConfig) -> bool:
    return bool(config.eval.bfcl_dir)


STAGES = (
    Stage("preprocess", None, True, lambda config, request: config.data.num_shards, preprocess_commands),
    Stage("train", "preprocess", False, None, None,
          lambda request: Resources(request.nodes, request.gpus_per_node, request.time)),
    Stage("gather", "train", False, None, gather_commands),
    Stage("infer", "gather", True, lambda config, request: request.infer_shards, infer_commands, one_gpu_per_task),
    Stage("score", "infer", False, lambda config, request: request.infer_shards, score_commands),
    # BFCL (eval.bfcl_dir): its cases become gold rows, answered and scored like the held-out rows
    Stage("bfcl-convert", "score", False, None, bfcl_convert_commands, wanted=names_a_bfcl_folder),
    Stage("bfcl-infer", "bfcl-convert", True, lambda config, request: request.infer_shards, bfcl_infer_commands,
          one_gpu_per_task, names_a_bfcl_folder),
    Stage("bfcl-score", "bfcl-infer", False, lambda config, request: request.infer_shards, bfcl_score_commands,
          wanted=names_a_bfcl_folder),
)
STAGE = {stage.name: stage for stage in STAGES}


@dataclass(frozen=True)
class Job:
    """One stage of a planned chain, as every launch path submits it."""

    stage: Stage
    tasks: int  # array tasks; 1 for a single job
    num_shards: int | None  # the stage's --num-shards, if it takes one
    resources: Resources


def plan(config: JobConfig, request: Request) -> list[Job]:
    """The chain's jobs for a config and a request, in submission order (nothing is checked or submitted)."""
    jobs = []
    for stage in filter(lambda stage: stage.wanted(config), STAGES):
        num_shards = stage.shards(config, request) if stage.shards else None
        jobs.append(Job(stage, num_shards if stage.array else 1, num_shards, stage.resources(request)))
    return jobs


# ---------------------------------------------------------------- sbatch


@dataclass(frozen=True)
class SbatchJob:
    """One sbatch command of the chain, its dependency aside (the id is known only once the stage before is in)."""

    stage: str
    after: str | None
    options: list[str]
    template: str
    arguments: list[str]

    def argv(self, after_id: str | None = None) -> list[str]:
        dependency = [f"--dependency=afterok:{after_id}"] if after_id else []
        return ["sbatch", *dependency, *self.options, self.template, *self.arguments]

    def submit_line(self) -> str:
        """What slurm/pipeline.sh evals: its submit function adds the dependency on AFTER's id ('-': none)."""
        return shlex.join(["submit", self.stage, self.after or "-", *self.options, self.template, *self.arguments])

    def shell_line(self) -> str:
        """A line of a script that submits the chain by hand: ``STAGE=$(sbatch ...)``, waiting on ``$AFTER``."""
        words = [shlex.quote(word) for word in self.argv(after_id="AFTER")]
        if self.after:
            words[1] = f'--dependency=afterok:"${self.after}"'
        return f"{self.stage}=$({' '.join(words)})"


def sbatch_jobs(config_args: list[str], request: Request) -> list[SbatchJob]:
    """The sbatch commands of the chain for ``["--config", C, key=value, ...]`` (nothing is checked or submitted)."""
    config = load_job(config_args)
    layout = RunLayout.of(config)
    jobs = []
    for job in plan(config, request):
        name = job.stage.name
        log = layout.slurm_log(name, "%A_%a" if job.stage.array else "%j")  # the name the job would pick itself
        array = [f"--array=0-{job.tasks - 1}"] if job.stage.array else []
        shards = ["--num-shards", str(job.num_shards)] if job.num_shards else []
        jobs.append(SbatchJob(name, job.stage.after, [*SBATCH_ALWAYS, *array, *job.resources.sbatch_options(),
                                                       f"--output={log}"], f"slurm/{name}.sh", [*shards, *config_args]))
    return jobs


# ---------------------------------------------------------------- checks before anything is submitted


def load_job(config_args: list[str]) -> JobConfig:
    """``["--config", C, key=value, ...]`` -> the validated config."""
    parser = argparse.ArgumentParser(prog="fcdist submit", add_help=False)
    add_config_arguments(parser)
    args = parser.parse_args(config_args)
    return load_config(args.config, args.overrides)


def check_accelerate_config(path: str, num_machines: int) -> None:
    """Refuse, before anything starts, an Accelerate config that cannot run on this many machines."""
    if not Path(path).is_file():
        raise SubmitError(f"distributed.accelerate_config: no such file: {path}")
    settings = yaml.safe_load(Path(path).read_text()) or {}
    if num_machines > 1 and (settings.get("same_network") or settings.get("distributed_type") == "NO"):
        raise SubmitError(
            f"{path} is a one-machine Accelerate config (same_network: true or distributed_type: NO), so torchrun "
            f"would get no rendezvous endpoint on {num_machines} nodes; set distributed.accelerate_config= one of "
            "configs/accelerate/multinode_*.yaml (multinode_cpu.yaml on nodes without GPUs)")


def check_at_root() -> None:
    if not Path(LAUNCH_SCRIPT).is_file():
        raise SubmitError(f"no {LAUNCH_SCRIPT} here ({Path.cwd()}): run from the fcdist repository root, "
                          "where the configs' relative paths point")


def check_request(request: Request) -> None:
    """Refuse now a training request SLURM can never meet: where the site does not enforce partition limits
    (EnforcePartLimits=NO, SLURM's default) sbatch would accept it and leave it pending for ever."""
    asked = STAGE["train"].resources(request).sbatch_options() or ["--nodes=1"]
    probe = subprocess.run(["sbatch", "--test-only", "--ntasks-per-node=1", *asked, "--wrap", "true"],
                           capture_output=True, text=True)
    if probe.returncode:
        raise SubmitError(f"SLURM cannot run the training job as asked ({' '.join(asked)}): {probe.stderr.strip()}")


def prepare(config_args: list[str], request: Request, slurm: bool = True) -> RunLayout:
    """Every check before a chain is submitted (repository root, config, Accelerate config for the nodes, and
    on SLURM the training request); makes the run's log folder. Raises ConfigError or SubmitError."""
    check_at_root()
    config = load_job(config_args)
    check_accelerate_config(config.distributed.accelerate_config, request.nodes)
    if slurm:
        check_request(request)
    layout = RunLayout.of(config)
    layout.slurm_logs.mkdir(parents=True, exist_ok=True)
    return layout


# ---------------------------------------------------------------- running a stage's task here


def accelerate_command(accelerate_config: str, train_args: list[str], *, num_machines: int, procs_per_node: int,
                       machine_rank: int, head: str, port: int) -> list[str]:
    """``accelerate launch`` for one node of ``num_machines``; the flags override the config file's placeholders.

    Several machines meet through a c10d rendezvous at head:port; the rendezvous numbers the ranks, so rank 0
    may be on any node (torchrun warns that it ignores node_rank; Accelerate still wants it, to check the port
    on node 0 only). Node 0, the head, hosts the rendezvous store, said explicitly: where several nodes share
    one host (the test cluster), every one of them would take the address for its own.
    """
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config,
               "--num_machines", str(num_machines), "--num_processes", str(num_machines * procs_per_node),
               "--main_process_port", str(port)]
    if num_machines > 1:
        command += ["--machine_rank", str(machine_rank), "--main_process_ip", head, "--rdzv_backend", "c10d",
                    "--rdzv_conf", f"is_host={int(machine_rank == 0)}"]
    return command + [LAUNCH_SCRIPT, *train_args]


def local_train_command(accelerate_config: str, config_args: list[str]) -> list[str]:
    """Training on this machine: the Accelerate config file as it stands (fcdist demo, submit --cluster local)."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config, LAUNCH_SCRIPT,
            *config_args]


def run_fcdist(argv: list[str]) -> None:
    """One ``fcdist`` command in this process, exactly as the CLI runs it; a failure raises."""
    from fcdist.cli import main as fcdist

    print("+ fcdist " + shlex.join(argv), flush=True)
    code = fcdist(list(argv))
    if code:
        raise RuntimeError(f"`fcdist {shlex.join(argv)}` exited {code}")


def run_task(stage: str, config_args: list[str], shard: int = 0, num_shards: int = 1) -> None:
    """Task ``shard`` of ``num_shards`` of a stage (not training): its fcdist commands, one after the other."""
    layout = RunLayout.of(load_job(config_args))
    for argv in STAGE[stage].commands(layout, config_args, shard, num_shards):
        run_fcdist(argv)


# ---------------------------------------------------------------- command line


def request_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=1, help="nodes for training (default 1)")
    parser.add_argument("--gpus-per-node", type=int, default=0, help="GPUs per training node; infer tasks get one (default 0)")
    parser.add_argument("--infer-shards", type=int, default=2, help="inference array tasks (default 2)")
    parser.add_argument("--gpu", help="the training nodes' GPU type, for fcdist plan's memory check, run before "
                                      "anything is submitted (default: memory not checked)")


def build_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m fcdist.stages {command}", allow_abbrev=False)
    if command == "sbatch-lines":
        request_arguments(parser)
        parser.add_argument("--time", help="the training job's time limit (sbatch --time)")
    else:
        parser.add_argument("stage", choices=[stage.name for stage in STAGES if stage.commands])
        parser.add_argument("--shard", type=int, default=0)
        parser.add_argument("--num-shards", type=int, default=1)
    add_config_arguments(parser)
    return parser


def sbatch_lines(argv: list[str]) -> int:
    args, unknown = build_parser("sbatch-lines").parse_known_args(argv)
    if unknown:
        print(f"pipeline.sh: unknown option '{unknown[0]}' (see the usage at the top of slurm/pipeline.sh)", file=sys.stderr)
        return 2
    config_args = ["--config", args.config, *args.overrides]
    request = Request(args.nodes, args.gpus_per_node, args.time, args.infer_shards)
    layout = prepare(config_args, request)
    print(f"RUN={shlex.quote(str(layout.root))}")
    print("\n".join(job.submit_line() for job in sbatch_jobs(config_args, request)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else ""
    try:
        if command == "sbatch-lines":
            return sbatch_lines(argv[1:])
        if command == "run":
            args = build_parser("run").parse_intermixed_args(argv[1:])
            run_task(args.stage, ["--config", args.config, *args.overrides], args.shard, args.num_shards)
            return 0
    except (ConfigError, SubmitError) as e:
        print(f"fcdist {command}: error: {e}", file=sys.stderr)
        return 1
    except RuntimeError as e:  # the failed command printed its reason; this names it
        print(f"fcdist {command}: {e}", file=sys.stderr)
        return 1
    print(__doc__.split("\n\n")[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
