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
- Time limits and preemption: submitit signals every task with USR2 ``slurm_signal_delay_s`` before the
  limit (scancel --signal=USR2 does the same). On the first task, :meth:`TrainTask.checkpoint` creates the
  run's STOP file, waits for the trainer to save and exit, and hands submitit the same call to requeue;
  the requeued job resumes from ``checkpoints/latest`` (the trainer does that itself).

Helpers for the templates, run inside their jobs as ``python -m fcdist.submit HELPER ...``:

    job-env STAGE [--num-shards N] [--nodes K] --config C [key=value ...]
        validate the config (an error names the key), make <run>/slurm/, and print the job's shell
        variables (RUN, LOG, CONFIG_ARGS, paths, and SHARD/NUM_SHARDS for the array stages) to eval
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
from dataclasses import dataclass
from pathlib import Path

import submitit
import yaml

from fcdist.cli import main as fcdist
from fcdist.config import JobConfig, add_config_arguments, load_config
from fcdist.errors import InputError
from fcdist.runtime import array_shard as array_task_shard

LAUNCH_SCRIPT = "launch/train.py"  # relative: jobs run from the repository root, like the configs' paths
# The trainer's control files in runs/<name>/ (fcdist/train/trainer.py, RunFolder)
STOP, DONE = "STOP", "DONE"
STAGES = ("preprocess", "train", "gather", "infer", "score", "pipeline")
ARRAY_STAGES = ("preprocess", "infer")


class SubmitError(RuntimeError):
    """A job that cannot run as asked; the message says what to change."""


# ---------------------------------------------------------------- where each stage reads and writes


@dataclass(frozen=True)
class Paths:
    """The files the stages hand on to each other, all derived from the job config."""

    run: Path  # runs/<name>: config, checkpoints, DONE/STOP, logs
    heldout: Path  # preprocess writes it; infer answers it; score grades against it
    predictions: Path  # infer's merged output
    report: Path  # score's report

    @classmethod
    def of(cls, config: JobConfig) -> "Paths":
        run = config.run_dir
        return cls(run, config.packed_dir / "heldout.jsonl", run / "predictions.jsonl", run / "score" / "report.json")


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


def node_command(config_args: list[str], slurm: bool = True) -> tuple[list[str], dict[str, str]]:
    """This node's training command and environment, from SLURM's variables (inside a step); outside
    SLURM the accelerate config file as it stands, like ``fcdist demo``.

    Processes per node: one per GPU SLURM gave the node, else one CPU process using the node's cores.
    """
    config = load_job(config_args)
    accelerate_config = config.distributed.accelerate_config
    env = dict(os.environ)
    if not slurm:
        return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config,
                LAUNCH_SCRIPT, *config_args], env
    procs = usable_gpus() or 1
    env.setdefault("OMP_NUM_THREADS", str(max(1, int(env.get("SLURM_CPUS_ON_NODE", 1)) // procs)))
    command = accelerate_command(
        accelerate_config, config_args, num_machines=int(env["SLURM_NNODES"]), procs_per_node=procs,
        machine_rank=int(env["SLURM_NODEID"]), head=head_address(env["SLURM_JOB_NODELIST"]),
        port=rendezvous_port(env["SLURM_JOB_ID"]))
    return command, env


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


# ---------------------------------------------------------------- job-env: what a template needs to know


def load_job(config_args: list[str]) -> JobConfig:
    """``["--config", C, key=value, ...]`` -> the validated config."""
    parser = argparse.ArgumentParser(prog="fcdist submit", add_help=False)
    add_config_arguments(parser)
    args = parser.parse_args(config_args)
    return load_config(args.config, args.overrides)


def array_shard(num_shards: int | None) -> tuple[int, int]:
    """(shard, count) of this array task, by the rule every stage follows (fcdist.runtime.array_shard)."""
    shard = array_task_shard(num_shards)
    if shard is None:
        raise SubmitError("not an array task: submit it with sbatch --array=0-<N-1>")
    return shard


def job_env(stage: str, config_args: list[str], num_shards: int | None = None, nodes: int = 1) -> dict[str, str | list[str]]:
    """The shell variables of a template's job (``nodes``: the training nodes slurm/pipeline.sh will ask for);
    raises ConfigError or SubmitError on bad input."""
    if not Path(LAUNCH_SCRIPT).is_file():
        raise SubmitError(f"no {LAUNCH_SCRIPT} here ({os.getcwd()}): submit from the fcdist repository root, "
                          "where the configs' relative paths point")
    config = load_job(config_args)
    paths = Paths.of(config)
    values: dict[str, str | list[str]] = {
        "RUN": str(paths.run), "HELDOUT": str(paths.heldout), "PREDICTIONS": str(paths.predictions),
        "REPORT": str(paths.report), "CONFIG_ARGS": config_args,
    }
    if stage == "pipeline":
        check_accelerate_config(config.distributed.accelerate_config, nodes)
        values["NUM_SHARDS"] = str(config.data.num_shards)
    else:
        job = os.environ.get("SLURM_JOB_ID")
        if job is None:
            raise SubmitError(f"slurm/{stage}.sh is a batch script: submit it with sbatch")
        if stage in ARRAY_STAGES:
            shard, count = array_shard(num_shards)
            values.update(SHARD=str(shard), NUM_SHARDS=str(count))
            job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{shard}"
        if stage == "score":  # the infer array's size, whose shard files it merges
            values["NUM_SHARDS"] = str(num_shards or 1)
        if stage == "train":
            check_accelerate_config(config.distributed.accelerate_config, int(os.environ.get("SLURM_NNODES", 1)))
            values.update(STOP_FILE=str(paths.run / STOP), DONE_FILE=str(paths.run / DONE))
        values["LOG"] = str(paths.run / "slurm" / f"{stage}-{job}.out")
    (paths.run / "slurm").mkdir(parents=True, exist_ok=True)
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


def run_stage(*argv: str) -> None:
    """One ``fcdist`` stage in this process, exactly as the CLI runs it; a failure fails the job."""
    print("+ fcdist " + shlex.join(argv), flush=True)
    code = fcdist(list(argv))
    if code:
        raise RuntimeError(f"`fcdist {shlex.join(argv)}` exited {code}")


def preprocess_task(config_args: list[str], shard: int, num_shards: int) -> None:
    run_stage("preprocess", *config_args, "--shard", str(shard), "--num-shards", str(num_shards))


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
        return str(Paths.of(load_job(config_args)).run)

    def checkpoint(self, config_args: list[str]) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on the first task when the job is about to be preempted or timed out: ask the
        trainer to save and stop (all ranks agree on the STOP file at the next step), wait until the
        launcher has exited, and return the same call to requeue; the next run resumes from the save."""
        stop = Paths.of(load_job(config_args)).run / STOP
        stop.touch()
        if self.launcher is not None:
            # Wait without reaping: the interrupted Popen.wait() of __call__ holds the Popen's lock.
            os.waitid(os.P_PID, self.launcher.pid, os.WEXITED | os.WNOWAIT)
        stop.unlink(missing_ok=True)  # honoured; left behind, it would stop the requeued run at once
        self.launcher = None  # not picklable, and the requeued job starts its own
        return submitit.helpers.DelayedSubmission(self, config_args)


def gather_task(config_args: list[str]) -> None:
    run_stage("gather", "--run", str(Paths.of(load_job(config_args)).run))


def infer_task(config_args: list[str], shard: int, num_shards: int) -> None:
    paths = Paths.of(load_job(config_args))
    run_stage("infer", "--run", str(paths.run), "--data", str(paths.heldout), "--out", str(paths.predictions),
              "--shard", str(shard), "--num-shards", str(num_shards), "--no-progress", *config_args)


def score_task(config_args: list[str], infer_shards: int) -> None:
    paths = Paths.of(load_job(config_args))
    if infer_shards > 1:  # the shard that completes the set merged already; this checks every id is there once
        run_stage("infer", "--merge-shards", "--num-shards", str(infer_shards), "--data", str(paths.heldout),
                  "--out", str(paths.predictions))
    run_stage("score", "--gold", str(paths.heldout), "--predictions", str(paths.predictions), "--out", str(paths.report))


# ---------------------------------------------------------------- the chain


def check_request(nodes: int, gpus_per_node: int, timeout_min: int) -> None:
    """Refuse now a training request SLURM can never meet: where the site does not enforce partition limits
    (EnforcePartLimits=NO, SLURM's default) sbatch would accept it and leave it pending for ever."""
    request = [f"--nodes={nodes}", f"--time={timeout_min}"] + ([f"--gpus-per-node={gpus_per_node}"] if gpus_per_node else [])
    probe = subprocess.run(["sbatch", "--test-only", "--ntasks-per-node=1", *request, "--wrap", "true"],
                           capture_output=True, text=True)
    if probe.returncode:
        raise SubmitError(f"SLURM cannot run the training job as asked ({' '.join(request)}): {probe.stderr.strip()}")


def submit_pipeline(config_args: list[str], cluster: str = "slurm", nodes: int = 1, gpus_per_node: int = 0,
                    infer_shards: int = 2, timeout_min: int = 60) -> dict[str, list[submitit.Job]]:
    """Submit every stage of the job in ``config_args``; returns the jobs by stage."""
    config = load_job(config_args)
    check_accelerate_config(config.distributed.accelerate_config, nodes)
    if cluster != "slurm" and nodes > 1:
        raise SubmitError(f"--cluster {cluster} runs on this machine only: --nodes must be 1")
    if not Path(LAUNCH_SCRIPT).is_file():
        raise SubmitError(f"no {LAUNCH_SCRIPT} here ({os.getcwd()}): run from the fcdist repository root")
    executor = submitit.AutoExecutor(folder=Paths.of(config).run / "submitit" / "%j", cluster=cluster)
    slurm = executor.cluster == "slurm"
    if slurm:
        check_request(nodes, gpus_per_node, timeout_min)
    jobs: dict[str, list[submitit.Job]] = {}

    def submit(stage: str, after: str | None, function, *args, job_nodes: int = 1, job_gpus: int = 0, array: int = 0):
        extra = {"requeue": True, "kill-on-invalid-dep": "yes"}  # see the module docstring
        if after and slurm:
            extra["dependency"] = "afterok:" + ":".join(job.job_id for job in jobs[after])
        elif after:  # no scheduler to hold this stage back
            for job in jobs[after]:
                job.results()
        executor.update_parameters(name=f"fcdist-{stage}", timeout_min=timeout_min, nodes=job_nodes, tasks_per_node=1,
                                   gpus_per_node=job_gpus, slurm_additional_parameters=extra,
                                   slurm_srun_args=["--kill-on-bad-exit=1"])
        if array:  # task i calls function(*args, i, array)
            jobs[stage] = executor.map_array(function, *([arg] * array for arg in args), range(array), [array] * array)
        else:
            jobs[stage] = [executor.submit(function, *args)]
        print(f"{stage}: {' '.join(job.job_id for job in jobs[stage])}", flush=True)

    submit("preprocess", None, preprocess_task, config_args, array=config.data.num_shards)
    submit("train", "preprocess", TrainTask(slurm), config_args, job_nodes=nodes, job_gpus=gpus_per_node)
    submit("gather", "train", gather_task, config_args)
    submit("infer", "gather", infer_task, config_args, job_gpus=min(gpus_per_node, 1), array=infer_shards)
    submit("score", "infer", score_task, config_args, infer_shards)
    if not slurm:
        jobs["score"][0].results()
    return jobs


def pipeline_commands(config_args: list[str], nodes: int = 1, gpus_per_node: int = 0,
                      infer_shards: int = 2) -> list[str]:
    """What a submission of the job would run, without submitting (``fcdist plan`` prints it): the sbatch
    calls of slurm/pipeline.sh (``$PREVIOUS``: the id of the job before; written to match the script, until
    the stage chain builds both), the first training node's accelerate launch (the others differ in
    --machine_rank and is_host) and the ``fcdist submit`` call that does the same with submitit."""
    config = load_job(config_args)
    args = shlex.join(config_args)
    logs = Paths.of(config).run / "slurm"
    train_opts = f"--nodes={nodes}" + (f" --gpus-per-node={gpus_per_node}" if gpus_per_node else "")
    infer_opts = " --gpus-per-node=1" if gpus_per_node else ""
    sbatch = "sbatch --parsable --kill-on-invalid-dep=yes"
    after = "--dependency=afterok:$PREVIOUS"
    shards = config.data.num_shards
    launch = accelerate_command(config.distributed.accelerate_config, config_args, num_machines=nodes,
                                procs_per_node=gpus_per_node or 1, machine_rank=0, head="HEAD_NODE",
                                port="PORT")  # type: ignore[arg-type]  # both known once the job starts
    return [
        f"slurm/pipeline.sh {train_opts} --infer-shards={infer_shards} {args}",
        f"  {sbatch} --array=0-{shards - 1} --output={logs}/preprocess-%A_%a.out slurm/preprocess.sh --num-shards {shards} {args}",
        f"  {sbatch} {after} {train_opts} --output={logs}/train-%j.out slurm/train.sh {args}",
        f"    node 0 of {nodes} runs: {shlex.join(launch)}",
        "    (HEAD_NODE: the job's first node; PORT: 10000 + job id % 20000)",
        f"  {sbatch} {after} --output={logs}/gather-%j.out slurm/gather.sh {args}",
        f"  {sbatch} {after} --array=0-{infer_shards - 1}{infer_opts} --output={logs}/infer-%A_%a.out "
        f"slurm/infer.sh --num-shards {infer_shards} {args}",
        f"  {sbatch} {after} --output={logs}/score-%j.out slurm/score.sh --num-shards {infer_shards} {args}",
        f"fcdist submit --cluster slurm --nodes {nodes} --gpus-per-node {gpus_per_node} --infer-shards {infer_shards} {args}",
    ]


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist submit",
        usage="fcdist submit --config C [--cluster slurm|local|debug] [--nodes K] [--gpus-per-node G] "
              "[--infer-shards M] [--timeout-min T] [key=value ...]\n"
              "       python -m fcdist.submit job-env STAGE [--num-shards N] [--nodes K] --config C [key=value ...]\n"
              "       python -m fcdist.submit node-launch --config C [key=value ...]",
        description="Submit preprocess -> train -> gather -> infer -> score with submitit, chained by dependencies. "
                    "job-env and node-launch are the SLURM templates' helpers (see slurm/).",
    )
    add_config_arguments(parser)
    parser.add_argument("--cluster", choices=("slurm", "local", "debug"), default="slurm",
                        help="slurm (default); local and debug run the stages on this machine, without a cluster")
    parser.add_argument("--nodes", type=int, default=1, help="nodes for training (default 1)")
    parser.add_argument("--gpus-per-node", type=int, default=0, help="GPUs per training node; infer tasks get one (default 0)")
    parser.add_argument("--infer-shards", type=int, default=2, help="inference array tasks (default 2)")
    parser.add_argument("--timeout-min", type=int, default=60, help="time limit of every job, minutes (default 60)")
    return parser


def helper_parser(helper: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m fcdist.submit {helper}")
    if helper == "job-env":
        parser.add_argument("stage", choices=STAGES)
        parser.add_argument("--num-shards", type=int, help="shards of the whole set (preprocess, infer: default the "
                                                            "array's size; score: the infer shards to merge, default 1)")
        parser.add_argument("--nodes", type=int, default=1, help="pipeline: the training nodes, to check the Accelerate config")
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
            print(shell_assignments(job_env(args.stage, config_args_of(args), args.num_shards, args.nodes)))
        elif helper == "node-launch":
            command, env = node_command(config_args_of(helper_parser(helper).parse_args(argv[1:])))
            print(f"fcdist node {env['SLURM_NODEID']} of {env['SLURM_NNODES']} ({socket.gethostname()}): "
                  + shlex.join(command), file=sys.stderr, flush=True)
            os.execvpe(command[0], command, env)
        else:
            args = build_parser().parse_args(argv)
            submit_pipeline(config_args_of(args), args.cluster, args.nodes, args.gpus_per_node, args.infer_shards,
                            args.timeout_min)
    except (InputError, SubmitError) as e:
        print(f"fcdist {helper or 'submit'}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
