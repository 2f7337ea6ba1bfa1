"""``fcdist submit``: the whole pipeline as cluster jobs from Python (submitit), and the helpers that the
templates in ``slurm/`` call, so that both ways of running on SLURM start every stage the same way.

    fcdist submit --config C [--cluster slurm|local|debug] [--nodes K] [--gpus-per-node G]
                  [--infer-shards M] [--timeout-min T] [key=value ...]

submits preprocess (an array, one task per shard of ``data.num_shards``) -> train -> gather -> infer (an
array of M tasks over the held-out prompts) -> score, prints the job ids and returns. Every job calls the
entry point the CLI and the templates call: ``fcdist.cli.main`` for the one-process stages, and for
training the very ``accelerate launch ... launch/train.py`` command that slurm/train.sh runs on each
node (:func:`node_command`). Run it from the repository root, like the templates. Partition, account
and QOS come from sbatch's own environment variables (SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_QOS).

Choices, and why:

- Training is one task per node, each running ``accelerate launch`` for the processes of its node, rather
  than one task per GPU under submitit's ``TorchDistributedEnvironment``: the launch is then the one
  slurm/train.sh makes (one function builds both), Accelerate still picks DDP or DeepSpeed from its config
  file, CPU-only nodes work (that environment counts GPUs), and the head node is reached by its
  ``NodeAddr`` where node names do not resolve (that environment uses the name as MASTER_ADDR).
- On SLURM the stages are chained with ``--dependency=afterok``, so the chain goes on after this command
  returns (a login session may end), and ``--kill-on-invalid-dep=yes`` cancels the jobs after a failed one
  instead of leaving them pending forever. The local and debug executors have no scheduler: there each
  stage waits for the results of the one before.
- The chain (stages, arrays, arguments, dependencies) is fcdist/stages.py's, which slurm/pipeline.sh and
  ``fcdist demo`` walk too; here each stage's task runs :func:`fcdist.stages.run_task` (training:
  :class:`TrainTask`).
- Time limits and preemption, the protocol of slurm/train.sh: SIGUSR2 ``PREEMPT_MARGIN_S`` before the limit
  (submitit signals every task; scancel --signal=USR2 does the same). On the first task,
  :meth:`TrainTask.checkpoint` creates the run's STOP file, waits for the trainer to save and exit, and
  hands submitit the same call to requeue; the requeued job resumes from ``checkpoints/latest`` (the
  trainer does that itself).

Helpers for the templates, run inside their jobs as ``python -m fcdist.submit HELPER ...``:

    job-env STAGE [--num-shards N] --config C [key=value ...]
        validate the config (an error names the key), make <run>/slurm/, and print the job's shell
        variables (RUN, LOG, CONFIG_ARGS, SHARD/NUM_SHARDS for the array stages and score, STOP_FILE and
        DONE_FILE for train) to eval
    node-launch --config C [key=value ...]
        on one node of a training step: exec that node's ``accelerate launch`` (:func:`node_command`)
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys

import functools

import submitit

from fcdist.config import JobConfig, add_config_arguments
from fcdist.errors import InputError
from fcdist.layout import RunLayout
from fcdist.plan import check_plan
from fcdist.runtime import array_shard
from fcdist.stages import (PREEMPT_MARGIN_S, STAGE, Request, SubmitError, accelerate_command, check_accelerate_config,
                           check_at_root, load_job, local_train_command, plan, prepare, request_arguments, run_task)


# ---------------------------------------------------------------- one node's accelerate launch


def head_address(nodelist: str) -> str:
    """The first node of the job, by name when it resolves, else by the NodeAddr SLURM reaches it at."""
    head = subprocess.run(["scontrol", "show", "hostnames", nodelist], check=True, capture_output=True,
                          text=True).stdout.split()[0]
    try:
        socket.getaddrinfo(head, None)  # what `getent hosts` asks
        return head
    except socket.gaierror:
        node = subprocess.run(["scontrol", "show", "node", head], check=True, capture_output=True, text=True).stdout
        return next(field.split("=", 1)[1] for field in node.split() if field.startswith("NodeAddr="))


def rendezvous_port(job_id: str | int) -> int:
    """A port from the job id, below Linux's ephemeral range: two jobs sharing a head node rarely collide,
    and a requeued job (same id) finds its port again."""
    return 10000 + int(job_id) % 20000


def usable_gpus() -> int:
    """The GPUs SLURM gave this node's task, if the node has real ones: GRES can be declared on nodes
    without CUDA (the test cluster's are /dev/null), and those must train on CPU."""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60).stdout
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return 0
    return int(os.environ.get("SLURM_GPUS_ON_NODE") or 0) if listed.startswith("GPU ") else 0


def node_command(config_args: list[str], slurm: bool = True) -> tuple[list[str], dict[str, str]]:
    """This node's training command and environment, from SLURM's variables (inside a step); outside
    SLURM the accelerate config file as it stands, like ``fcdist demo``.

    Processes per node: one per GPU SLURM gave the node, else one CPU process using the node's cores.
    """
    config = load_job(config_args)
    accelerate_config = config.distributed.accelerate_config
    env = dict(os.environ)
    if not slurm:
        return local_train_command(accelerate_config, config_args), env
    procs = usable_gpus() or 1
    env.setdefault("OMP_NUM_THREADS", str(max(1, int(env.get("SLURM_CPUS_ON_NODE", 1)) // procs)))
    command = accelerate_command(
        accelerate_config, config_args, num_machines=int(env["SLURM_NNODES"]), procs_per_node=procs,
        machine_rank=int(env["SLURM_NODEID"]), head=head_address(env["SLURM_JOB_NODELIST"]),
        port=rendezvous_port(env["SLURM_JOB_ID"]))
    return command, env


# ---------------------------------------------------------------- job-env: what a template needs to know


def job_env(stage: str, config_args: list[str], num_shards: int | None = None) -> dict[str, str | list[str]]:
    """The shell variables of a template's job; raises ConfigError or SubmitError on bad input."""
    check_at_root()
    layout = RunLayout.of(load_job(config_args))
    job = os.environ.get("SLURM_JOB_ID")
    if job is None:
        raise SubmitError(f"slurm/{stage}.sh is a batch script: submit it with sbatch")
    values: dict[str, str | list[str]] = {"RUN": str(layout.root), "CONFIG_ARGS": config_args}
    if STAGE[stage].array:
        task = array_shard(num_shards)  # the rule every stage follows
        if task is None:
            raise SubmitError(f"slurm/{stage}.sh is not an array task: submit it with sbatch --array=0-<N-1>")
        shard, count = task
        values.update(SHARD=str(shard), NUM_SHARDS=str(count))
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{shard}"
    elif STAGE[stage].shards:  # score: the infer array's size, whose shard files it merges
        values["NUM_SHARDS"] = str(num_shards or 1)
    if stage == "train":
        check_accelerate_config(load_job(config_args).distributed.accelerate_config, int(os.environ.get("SLURM_NNODES", 1)))
        values.update(STOP_FILE=str(layout.stop), DONE_FILE=str(layout.done))
    values["LOG"] = str(layout.slurm_log(stage, job))
    layout.slurm_logs.mkdir(parents=True, exist_ok=True)
    return values


def shell_assignments(values: dict[str, str | list[str]]) -> str:
    """bash to eval: NAME=value lines, lists as arrays, every value quoted."""
    lines = []
    for name, value in values.items():
        if isinstance(value, list):
            lines.append(f"{name}=({' '.join(shlex.quote(v) for v in value)})")
        else:
            lines.append(f"{name}={shlex.quote(value)}")
    return "\n".join(lines)


# ---------------------------------------------------------------- the stages as submitit jobs


def ignore_usr2() -> None:
    """In the launcher and its workers: SLURM signals every process of the step, and USR2 is submitit's
    (TrainTask.checkpoint answers it); by default it would kill the launcher and orphan its workers."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


class TrainTask(submitit.helpers.Checkpointable):
    """One node's share of training: the node's ``accelerate launch``, resumable through submitit's checkpointing."""

    def __init__(self, slurm: bool):
        self.slurm = slurm
        self.launcher: subprocess.Popen | None = None

    def __call__(self, config_args: list[str]) -> str:
        command, env = node_command(config_args, self.slurm)
        print("+ " + shlex.join(command), flush=True)
        self.launcher = subprocess.Popen(command, env=env, preexec_fn=ignore_usr2)
        code = self.launcher.wait()
        if code:
            raise RuntimeError(f"training exited {code}: {shlex.join(command)}")
        return str(RunLayout.of(load_job(config_args)).root)

    def checkpoint(self, config_args: list[str]) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on the first task when the job is about to be preempted or timed out: ask the
        trainer to save and stop (all ranks agree on the STOP file at the next step), wait until the
        launcher has exited, and return the same call to requeue; the next run resumes from the save."""
        stop = RunLayout.of(load_job(config_args)).stop
        stop.touch()
        if self.launcher is not None:
            # Wait without reaping: the interrupted Popen.wait() of __call__ holds the Popen's lock.
            os.waitid(os.P_PID, self.launcher.pid, os.WEXITED | os.WNOWAIT)
        stop.unlink(missing_ok=True)  # honoured; left behind, it would stop the requeued run at once
        self.launcher = None  # not picklable, and the requeued job starts its own
        return submitit.helpers.DelayedSubmission(self, config_args)


# ---------------------------------------------------------------- the chain


def refuse_what_cannot_run(config: JobConfig, nodes: int, gpus_per_node: int, gpu: str | None) -> None:
    """fcdist plan's refusals (a batch that cannot split, a micro-batch that cannot fit, a setup that cannot
    train), before anything is queued; slurm/pipeline.sh runs the same check (``fcdist plan --check``)."""
    problems = check_plan(config, nodes, gpus_per_node, gpu)
    if problems:
        raise SubmitError("; ".join(problems) + " (fcdist plan shows the whole plan)")


def submit_pipeline(config_args: list[str], cluster: str = "slurm", nodes: int = 1, gpus_per_node: int = 0,
                    infer_shards: int = 2, timeout_min: int = 60, gpu: str | None = None) -> dict[str, list[submitit.Job]]:
    """Submit every stage of the job in ``config_args``; returns the jobs by stage."""
    if cluster != "slurm" and nodes > 1:
        raise SubmitError(f"--cluster {cluster} runs on this machine only: --nodes must be 1")
    request = Request(nodes, gpus_per_node, str(timeout_min), infer_shards)
    config = load_job(config_args)
    refuse_what_cannot_run(config, nodes, gpus_per_node, gpu)
    executor = submitit.AutoExecutor(folder=RunLayout.of(config).submitit / "%j", cluster=cluster)
    slurm = executor.cluster == "slurm"
    prepare(config_args, request, slurm)
    jobs: dict[str, list[submitit.Job]] = {}
    for job in plan(config, request):
        stage = job.stage
        extra = {"requeue": True, "kill-on-invalid-dep": "yes"}  # see the module docstring
        if stage.after and slurm:
            extra["dependency"] = "afterok:" + ":".join(j.job_id for j in jobs[stage.after])
        elif stage.after:  # no scheduler to hold this stage back
            for earlier in jobs[stage.after]:
                earlier.results()
        executor.update_parameters(name=f"fcdist-{stage.name}", timeout_min=timeout_min, nodes=job.resources.nodes,
                                   tasks_per_node=1, gpus_per_node=job.resources.gpus_per_node,
                                   slurm_signal_delay_s=PREEMPT_MARGIN_S, slurm_additional_parameters=extra,
                                   slurm_srun_args=["--kill-on-bad-exit=1"])
        if stage.commands is None:  # training: one task per node, each its node's accelerate launch
            jobs[stage.name] = [executor.submit(TrainTask(slurm), config_args)]
        elif stage.array:  # task i runs shard i of the array
            jobs[stage.name] = executor.map_array(functools.partial(run_task, stage.name), [config_args] * job.tasks,
                                                  range(job.tasks), [job.tasks] * job.tasks)
        else:
            jobs[stage.name] = [executor.submit(run_task, stage.name, config_args, 0, job.num_shards or 1)]
        print(f"{stage.name}: {' '.join(j.job_id for j in jobs[stage.name])}", flush=True)
    if not slurm:
        jobs[plan(config, request)[-1].stage.name][0].results()
    return jobs


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist submit",
        usage="fcdist submit --config C [--cluster slurm|local|debug] [--nodes K] [--gpus-per-node G] "
              "[--infer-shards M] [--gpu TYPE] [--timeout-min T] [key=value ...]\n"
              "       python -m fcdist.submit job-env STAGE [--num-shards N] --config C [key=value ...]\n"
              "       python -m fcdist.submit node-launch --config C [key=value ...]",
        description="Submit preprocess -> train -> gather -> infer -> score with submitit, chained by dependencies. "
                    "job-env and node-launch are the SLURM templates' helpers (see slurm/).",
    )
    add_config_arguments(parser)
    parser.add_argument("--cluster", choices=("slurm", "local", "debug"), default="slurm",
                        help="slurm (default); local and debug run the stages on this machine, without a cluster")
    request_arguments(parser)
    parser.add_argument("--timeout-min", type=int, default=60, help="time limit of every job, minutes (default 60)")
    return parser


def helper_parser(helper: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m fcdist.submit {helper}")
    if helper == "job-env":
        parser.add_argument("stage", choices=list(STAGE))
        parser.add_argument("--num-shards", type=int, help="shards of the whole set (preprocess, infer: default the "
                                                            "array's size; score: the infer shards to merge, default 1)")
    add_config_arguments(parser)
    return parser


def config_args_of(args: argparse.Namespace) -> list[str]:
    return ["--config", args.config, *args.overrides]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    helper = argv[0] if argv and argv[0] in ("job-env", "node-launch") else None
    try:
        if helper == "job-env":
            args = helper_parser(helper).parse_intermixed_args(argv[1:])
            print(shell_assignments(job_env(args.stage, config_args_of(args), args.num_shards)))
        elif helper == "node-launch":
            command, env = node_command(config_args_of(helper_parser(helper).parse_args(argv[1:])))
            print(f"fcdist node {env['SLURM_NODEID']} of {env['SLURM_NNODES']} ({socket.gethostname()}): "
                  + shlex.join(command), file=sys.stderr, flush=True)
            os.execvpe(command[0], command, env)
        else:
            args = build_parser().parse_args(argv)
            submit_pipeline(config_args_of(args), args.cluster, args.nodes, args.gpus_per_node, args.infer_shards,
                            args.timeout_min, args.gpu)
    except (InputError, SubmitError) as e:
        print(f"fcdist {helper or 'submit'}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
