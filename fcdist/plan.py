"""``fcdist plan``: a dry run of a job on hardware it need not have, before a cluster spends hours on it.

    fcdist plan --config C [--nodes N] [--gpus-per-node G] [--gpu TYPE] [--model-config PATH]
                [--installed PKG,...] [--infer-shards M] [key=value ...]

prints what training would resolve on N nodes of G GPUs of TYPE (dtype, attention, ZeRO stage, LoRA targets,
``train.tune=auto``'s choice, the batch plan per world size), the packed data's manifest against the config,
the estimated memory per GPU at the chosen micro-batch, and the commands a submission would run; then every
reason the job cannot fit or cannot start, one line each, and exits 1 if there is one. No GPU is needed:
the choices come from the same functions training calls (fcdist/train/model.py, trainer.py, tune.py), given
the GPU's facts from :data:`GPUS` instead of torch.cuda. :func:`check_plan` is the refusal alone, for the
submitters to run first.

The memory estimate is tune.py's, fitted to peaks measured on one H200 without DeepSpeed (within 5%). Under
ZeRO the sharded parts are divided by the world size, which is not measured.
"""

from __future__ import annotations

import argparse
import shlex
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import yaml

from fcdist.config import JobConfig, add_config_arguments, load_config
from fcdist.errors import InputError

if TYPE_CHECKING:  # imported where used: `fcdist --help` and the submitters need not load torch for them
    from fcdist.train.model import Runtime
    from fcdist.train.trainer import BatchPlan
    from fcdist.train.tune import ModelShape

GIB, MIB = 2**30, 2**20
PACKAGES = ("triton", "liger_kernel", "flash_attn")  # the optional ones that change what training chooses


@dataclass(frozen=True)
class GpuType:
    """What planning needs to know of a GPU it does not have."""

    memory_mib: int
    capability: tuple[int, int]

    @property
    def bf16(self) -> bool:
        return self.capability >= (8, 0)


# The GPUs' memory as nvidia-smi reports it (the H200's as seen on the benchmark machine) and compute capability.
GPUS = {
    "H200": GpuType(143771, (9, 0)),
    "H100": GpuType(81559, (9, 0)),
    "A100-80GB": GpuType(81920, (8, 0)),
    "A100-40GB": GpuType(40960, (8, 0)),
    "L40S": GpuType(46068, (8, 9)),
    "A10": GpuType(23028, (8, 6)),
    "V100": GpuType(32768, (7, 0)),  # no bf16: model.dtype=auto resolves to fp16
}


@dataclass(frozen=True)
class Hardware:
    """The machines a job is planned for; ``gpus_per_node=0``: CPU nodes, one process each (as fcdist submit runs them)."""

    nodes: int
    gpus_per_node: int
    gpu: str | None  # a key of GPUS; None: GPUs of a type not given, so their memory is not checked
    packages: frozenset[str]  # of PACKAGES, importable on the nodes

    @property
    def world_size(self) -> int:
        return self.nodes * max(self.gpus_per_node, 1)

    @property
    def gpu_type(self) -> GpuType | None:
        return GPUS[self.gpu] if self.gpus_per_node and self.gpu else None

    @property
    def gpu_bytes(self) -> int | None:
        return self.gpu_type.memory_mib * MIB if self.gpu_type else None

    def describe(self) -> str:
        if self.gpus_per_node and not self.gpu_type:
            where = f"{self.gpus_per_node} GPUs of a type not given (memory not checked)"
        else:
            where = f"{self.gpus_per_node} {self.gpu} ({self.gpu_bytes / GIB:.0f} GiB)" if self.gpu_type else "1 CPU process"
        return f"{self.nodes} node(s) x {where}, world size {self.world_size}"


def installed_here() -> frozenset[str]:
    return frozenset(name for name in PACKAGES if importlib.util.find_spec(name) is not None)


# ---------------------------------------------------------------- the runtime training would detect


def launch_settings(accelerate_config: str) -> tuple[tuple[int, bool, bool], str]:
    """((ZeRO stage, params offloaded, optimizer offloaded), mixed precision) that ``accelerate launch`` would
    pass training for this config file, read by training's own reader of them (model.deepspeed_settings)."""
    from fcdist.train.model import deepspeed_settings

    settings = yaml.safe_load(Path(accelerate_config).read_text()) or {}
    deepspeed = settings.get("deepspeed_config") or {}
    env = {"ACCELERATE_USE_DEEPSPEED": str(settings.get("distributed_type") == "DEEPSPEED").lower()}
    for key, variable in (("deepspeed_config_file", "ACCELERATE_DEEPSPEED_CONFIG_FILE"),
                          ("zero_stage", "ACCELERATE_DEEPSPEED_ZERO_STAGE"),
                          ("offload_param_device", "ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE"),
                          ("offload_optimizer_device", "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE")):
        if key in deepspeed:
            env[variable] = str(deepspeed[key])
    with mock.patch.dict(os.environ, env, clear=True):  # only these, as in a fresh launch
        return deepspeed_settings(), str(settings.get("mixed_precision", "no"))


def runtime_of(config: JobConfig, hardware: Hardware, world_size: int | None = None) -> Runtime:
    from fcdist.train.model import Runtime

    (stage, offload_params, offload_optimizer), mixed_precision = launch_settings(config.distributed.accelerate_config)
    return Runtime(gpu=hardware.gpus_per_node > 0, world_size=world_size or hardware.world_size, local_rank=0,
                   zero_stage=stage, offload_params=offload_params, offload_optimizer=offload_optimizer,
                   flash_attn="flash_attn" in hardware.packages, liger="liger_kernel" in hardware.packages,
                   mixed_precision_env=mixed_precision)


def planned_dtype(config: JobConfig, runtime: Runtime, hardware: Hardware) -> str:
    """Training's rule (runtime.resolve_dtype), with the planned GPU's bf16 support instead of torch.cuda's."""
    from fcdist.runtime import resolve_dtype

    if config.model.dtype != "auto" or not hardware.gpus_per_node:
        return resolve_dtype(config.model.dtype, gpu=False)  # the setting itself, or fp32 without a GPU
    return "fp16" if hardware.gpu_type and not hardware.gpu_type.bf16 else "bf16"  # a type not given: a recent GPU


def tuned(config: JobConfig, model_config, hardware: Hardware, runtime: Runtime) -> tuple[JobConfig, str]:
    """``train.tune=auto``'s choice for the planned GPU, as training makes it."""
    from fcdist.train.tune import compile_problem, tune

    gpu = hardware.gpu_type
    if hardware.gpus_per_node and gpu is None:
        return config, "train.tune=auto: chosen from the GPU's memory at start (the GPU type was not given)"
    return tune(config, model_config, config.train.global_batch_size // runtime.world_size, runtime.zero_stage,
                runtime.liger, hardware.gpu_bytes,
                compiler=lambda: compile_problem(gpu.capability, "triton" in hardware.packages))


# ---------------------------------------------------------------- memory


@dataclass(frozen=True)
class Memory:
    """Estimated peak memory of one rank, in bytes."""

    model: float  # the frozen base and the trainable weights
    optimizer: float  # the trainable parameters' gradients and Adam moments
    activations: float

    @property
    def total(self) -> float:
        return self.model + self.optimizer + self.activations


def configured_plan(config: JobConfig):
    """The speed settings of a config (after tuning) as one of tune.py's plans."""
    from fcdist.train.tune import Plan

    return Plan("as configured", dequantized_copy=config.quant.load_in_4bit and config.quant.dequantized_copy,
                compile=config.train.torch_compile, checkpointing=config.train.gradient_checkpointing,
                liger=config.train.liger_kernel)


def memory_per_rank(config: JobConfig, shape: ModelShape, runtime: Runtime, micro_batch: int) -> Memory:
    """tune.peak_bytes split in its parts, with ZeRO's sharding (unmeasured: the fit is one H200 without
    DeepSpeed): stage 1 shards the Adam moments, 2 also the gradients, 3 also the weights; offload moves them to CPU."""
    from fcdist.train.tune import activation_bytes, frozen_bytes, trainable_parameters

    plan, world, stage = configured_plan(config), runtime.world_size, runtime.zero_stage
    trainable = trainable_parameters(config, shape)
    model = frozen_bytes(config, shape, plan) + 4.0 * trainable  # fp32 trainable weights
    gradients, moments = 4.0 * trainable, 8.0 * trainable
    if stage >= 1:
        moments = 0.0 if runtime.offload_optimizer else moments / world
    if stage >= 2:
        gradients /= world
    if stage == 3:
        model = 0.0 if runtime.offload_params else model / world
    return Memory(model, gradients + moments, activation_bytes(shape, plan, micro_batch * config.data.max_length))


def largest_fitting_micro_batch(config: JobConfig, shape: ModelShape, runtime: Runtime, per_rank_rows: int, budget: float) -> int | None:
    from fcdist.train.tune import micro_batch_divisors

    return next((micro for micro in micro_batch_divisors(per_rank_rows)
                 if memory_per_rank(config, shape, runtime, micro).total <= budget), None)


def memory_problem(config: JobConfig, shape: ModelShape, runtime: Runtime, hardware: Hardware, batch: BatchPlan, memory: Memory) -> str | None:
    """Why the chosen micro-batch cannot fit the planned GPU, naming what would, or None."""
    from fcdist.train.tune import FRACTION_USABLE

    budget = FRACTION_USABLE * hardware.gpu_bytes
    if memory.total <= budget:
        return None
    smaller = largest_fitting_micro_batch(config, shape, runtime, batch.micro_batch * batch.accumulation, budget)
    fix = (f"train.micro_batch_size={smaller} fits" if smaller else "no micro-batch fits these settings") + \
        ("" if config.train.gradient_checkpointing else "; train.gradient_checkpointing=true needs less") + \
        ("; train.tune=auto picks what fits" if config.train.tune == "manual" else "")
    return (f"train.micro_batch_size={batch.micro_batch} does not fit one {hardware.gpu}: an estimated "
            f"{memory.total / GIB:.1f} GiB per GPU, over the {budget / GIB:.1f} GiB usable "
            f"({FRACTION_USABLE:.0%} of {hardware.gpu_bytes / GIB:.1f} GiB); {fix}")


# ---------------------------------------------------------------- the plan


@dataclass
class JobPlan:
    """What training would resolve for one job on one piece of hardware, and why it could not run."""

    config: JobConfig  # after train.tune
    runtime: Runtime
    dtype: str
    attention: str
    tuning: str
    targets: str
    batch: BatchPlan | None  # None when the global batch cannot be split
    memory: Memory | None
    problems: list[str]


def read_model_config(config: JobConfig, model_config_path: str | None = None):
    """The model's config (architecture only, no weights): from --model-config, else model.name_or_path."""
    from transformers import AutoConfig

    source = model_config_path or config.model.name_or_path
    try:
        return AutoConfig.from_pretrained(source, revision=None if model_config_path else config.model.revision,
                                          trust_remote_code=config.model.trust_remote_code)
    except (OSError, ValueError) as e:
        raise InputError(f"model.name_or_path={source}: cannot read the model's config ({' '.join(str(e).split())[:200]}); "
                         "pass --model-config PATH (a folder with config.json) to plan without it") from e


def lora_targets(config: JobConfig, model_config) -> str:
    """lora.target_modules as training resolves them, on an empty (meta) copy of the model."""
    import torch
    from transformers import AutoModelForCausalLM

    from fcdist.model.lora import resolve_target_modules

    if not config.lora.enabled:
        return "none (full fine-tuning)"
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(model_config)
    return ", ".join(resolve_target_modules(model, config.lora.target_modules)) + f" (r={config.lora.r})"


def make_plan(config: JobConfig, hardware: Hardware, model_config) -> JobPlan:
    """What training would resolve on ``hardware``; without a ``model_config`` (None: unreadable here), the
    choices that need the model (train.tune, LoRA targets, memory) are left out."""
    from fcdist.stages import check_accelerate_config
    from fcdist.runtime import resolve_attention
    from fcdist.errors import SetupError
    from fcdist.train.model import setup_problems
    from fcdist.train.trainer import plan_batches
    from fcdist.train.tune import model_shape

    check_accelerate_config(config.distributed.accelerate_config, hardware.nodes)  # SubmitError: nothing to plan
    runtime = runtime_of(config, hardware)
    tuning, targets = "not planned: the model's config was not read", "-"
    if model_config is not None:
        config, tuning = tuned(config, model_config, hardware, runtime)
    dtype = planned_dtype(config, runtime, hardware)
    attention = resolve_attention(config.model.attn_implementation, runtime.gpu, runtime.flash_attn)
    problems = setup_problems(config, runtime, dtype, attention)
    if model_config is not None:
        try:
            targets = lora_targets(config, model_config)
        except SetupError as e:
            problems.append(str(e))
    batch = memory = None
    try:
        batch = plan_batches(config.train, runtime.world_size)
    except SetupError as e:
        problems.append(str(e))
    if batch is not None and model_config is not None:
        shape = model_shape(model_config)
        memory = memory_per_rank(config, shape, runtime, batch.micro_batch)
        too_big = memory_problem(config, shape, runtime, hardware, batch, memory) if hardware.gpu_type else None
        problems += [too_big] if too_big else []
    return JobPlan(config, runtime, dtype, attention, tuning, targets, batch, memory, problems)


def check_plan(config: JobConfig, nodes: int, gpus_per_node: int, gpu: str | None = None, model_config=None) -> list[str]:
    """Every reason this job cannot fit or cannot start on ``nodes`` x ``gpus_per_node`` ``gpu`` (empty: it can),
    one line each naming the setting to change; the submitters call it before anything is queued. Without a
    GPU type the memory is not checked. The nodes are taken to have the optional packages this environment has."""
    from fcdist.stages import SubmitError

    if gpu is not None and gpu not in GPUS:
        return [f"--gpu {gpu}: unknown GPU type; known: {', '.join(GPUS)}"]
    hardware = Hardware(nodes, gpus_per_node, gpu, installed_here())
    try:
        if model_config is None:
            try:
                model_config = read_model_config(config)
            except InputError as e:  # the job may fetch the model itself: check what needs no model
                print(f"fcdist plan: {e}; checking the job without the model (no memory or LoRA check)", file=sys.stderr)
        return make_plan(config, hardware, model_config).problems
    except (InputError, SubmitError) as e:
        return [" ".join(str(e).split())]


# ---------------------------------------------------------------- the report


def batch_rows(config: JobConfig, model_config, hardware: Hardware) -> list[str]:
    """The batch plan at world sizes around the planned one: what tune and plan_batches make of each."""
    from fcdist.errors import SetupError
    from fcdist.train.trainer import plan_batches
    from fcdist.train.tune import model_shape

    shape = model_shape(model_config)
    rows = [f"  {'world':>5}  {'micro x accumulation':<22} {'est. peak/rank':>14}"]
    for world in sorted({1, 2, 4, 8, 16, hardware.world_size}):
        runtime = runtime_of(config, hardware, world)
        tuned_config = tuned(config, model_config, hardware, runtime)[0]
        mark = "  <- planned" if world == hardware.world_size else ""
        try:
            batch = plan_batches(tuned_config.train, world)
        except SetupError:
            rows.append(f"  {world:>5}  does not divide train.global_batch_size={config.train.global_batch_size}{mark}")
            continue
        peak = memory_per_rank(tuned_config, shape, runtime, batch.micro_batch).total
        rows.append(f"  {world:>5}  {f'{batch.micro_batch} x {batch.accumulation}':<22} {peak / GIB:>10.1f} GiB{mark}")
    return rows


def manifest_line(config: JobConfig) -> str:
    """The packed data's manifest against the config, as training checks it (shards.check_manifest)."""
    from fcdist.preprocess.shards import MANIFEST, check_manifest, load_tokenizer

    path = config.packed_dir / MANIFEST
    later = "the pipeline's preprocess stage writes it; slurm/train.sh alone would refuse"
    if not path.is_file():
        return f"{path}: none yet ({later})"
    try:
        manifest = check_manifest(config, load_tokenizer(config))
    except (OSError, ValueError) as e:
        return f"{' '.join(str(e).split())} ({later})"
    rows, batch = manifest["totals"]["packed_rows"], config.train.global_batch_size
    return (f"{path}: matches the config; {rows} packed rows, train.max_steps={config.train.max_steps} x {batch} "
            f"rows = {config.train.max_steps * batch / max(rows, 1):.2f} epochs")


def memory_rows(plan: JobPlan, hardware: Hardware) -> list[str]:
    from fcdist.train.tune import FRACTION_USABLE

    memory, batch = plan.memory, plan.batch
    where = f"per GPU ({hardware.gpu})" if hardware.gpu_type else "per process (CPU: no GPU limit checked)"
    rows = [f"memory {where}, micro-batch {batch.micro_batch} x {plan.config.data.max_length} tokens, "
            f"ZeRO-{plan.runtime.zero_stage} over {plan.runtime.world_size}:"]
    for name, value in (("model (base + trainable weights)", memory.model),
                        ("gradients + optimizer states", memory.optimizer),
                        ("activations", memory.activations), ("total", memory.total)):
        rows.append(f"  {name:<34} {value / GIB:>7.1f} GiB")
    if hardware.gpu_bytes:
        budget = FRACTION_USABLE * hardware.gpu_bytes
        verdict = "fits" if memory.total <= budget else "DOES NOT FIT"
        rows.append(f"  {'usable':<34} {budget / GIB:>7.1f} GiB ({FRACTION_USABLE:.0%} of {hardware.gpu_bytes / GIB:.1f}): {verdict}")
    return rows


def submission_commands(config_args: list[str], nodes: int = 1, gpus_per_node: int = 0,
                      infer_shards: int = 2) -> list[str]:
    """What a submission of the job would run, without submitting (``fcdist plan`` prints it): the stage
    chain's sbatch calls as slurm/pipeline.sh makes them, the first training node's accelerate launch (the
    others differ in --machine_rank) and the ``fcdist submit`` call that does the same with submitit."""
    from fcdist.stages import Request, accelerate_command, load_job, sbatch_jobs

    config = load_job(config_args)
    request = Request(nodes=nodes, gpus_per_node=gpus_per_node, infer_shards=infer_shards)
    options = f"--nodes {nodes} --gpus-per-node {gpus_per_node} --infer-shards {infer_shards} {shlex.join(config_args)}"
    launch = accelerate_command(config.distributed.accelerate_config, config_args, num_machines=nodes,
                                procs_per_node=gpus_per_node or 1, machine_rank=0, head="HEAD_NODE",
                                port="PORT")  # type: ignore[arg-type]  # both known once the job starts
    lines = [f"slurm/pipeline.sh {options}"]
    for job in sbatch_jobs(config_args, request):
        lines.append(f"  {job.shell_line()}")
        if job.stage == "train":
            lines += [f"    node 0 of {nodes} runs: {shlex.join(launch)}",
                      "    (HEAD_NODE: the job's first node; PORT: 10000 + job id % 20000)"]
    return [*lines, f"fcdist submit --cluster slurm {options}"]


def report(plan: JobPlan, hardware: Hardware, model_config, config_args: list[str], infer_shards: int) -> list[str]:
    config, runtime = plan.config, plan.runtime
    lines = [f"fcdist plan: {shlex.join(config_args)}", f"on {hardware.describe()}", "", "choices:"]
    for name, value in (("dtype", f"{plan.dtype} (model.dtype={config.model.dtype})"),
                        ("attention", f"{plan.attention} (model.attn_implementation={config.model.attn_implementation})"),
                        ("ZeRO stage", f"{runtime.zero_stage} ({config.distributed.accelerate_config})"),
                        ("LoRA targets", plan.targets),
                        ("speed settings", plan.tuning or f"train.tune={config.train.tune}: as configured"),
                        ("global batch", f"train.global_batch_size={config.train.global_batch_size} rows of "
                                         f"{config.data.max_length} tokens")):
        lines.append(f"  {name:<15} {value}")
    lines += ["", "batch plan per world size:", *batch_rows(config, model_config, hardware)]
    lines += ["", f"data: {manifest_line(config)}"]
    if plan.memory is not None:
        lines += ["", *memory_rows(plan, hardware)]
    lines += ["", "commands:", *submission_commands(config_args, hardware.nodes, hardware.gpus_per_node, infer_shards)]
    return lines


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist plan",
        usage="fcdist plan --config C [--nodes N] [--gpus-per-node G] [--gpu TYPE] [--model-config PATH] "
              "[--installed PKG,...] [--infer-shards M] [--time T] [--check] [key=value ...]",
        description="Dry-run a job on N nodes of G GPUs (no GPU needed): the choices training would make, the "
                    "data manifest, memory per GPU, the submission commands, and why it could not run (exit 1).",
    )
    add_config_arguments(parser)
    parser.add_argument("--nodes", type=int, default=1, help="training nodes (default 1)")
    parser.add_argument("--gpus-per-node", type=int, help="GPUs per node; 0: CPU nodes (default 1; with --check 0, "
                                                          "as slurm/pipeline.sh and fcdist submit)")
    parser.add_argument("--gpu", choices=tuple(GPUS), help="GPU type (default H200; with --check: none, memory unchecked)")
    parser.add_argument("--model-config", metavar="PATH", help="a folder with the model's config.json, instead of "
                                                              "reading model.name_or_path's (no hub needed)")
    parser.add_argument("--installed", metavar="PKG,...", help=f"of {', '.join(PACKAGES)}: those the nodes have "
                                                               "(default: those importable here)")
    parser.add_argument("--infer-shards", type=int, default=2, help="inference array tasks (default 2)")
    parser.add_argument("--time", help="the training job's time limit, as slurm/pipeline.sh takes it (not planned)")
    parser.add_argument("--check", action="store_true",
                        help="print only why the job cannot run (what slurm/pipeline.sh and fcdist submit run first); "
                             "without --gpu, memory is not checked")
    return parser


def packages_of(installed: str | None) -> frozenset[str]:
    if installed is None:
        return installed_here()
    names = frozenset(name for name in installed.split(",") if name)
    unknown = names - set(PACKAGES)
    if unknown:
        raise InputError(f"--installed: unknown package(s) {', '.join(sorted(unknown))}; known: {', '.join(PACKAGES)}")
    return names


def main(argv: list[str] | None = None) -> int:
    from fcdist.stages import SubmitError

    args = build_parser().parse_intermixed_args(argv)  # options and overrides in any order
    config_args = ["--config", args.config, *args.overrides]
    config = load_config(args.config, args.overrides)
    if args.gpus_per_node is None:
        args.gpus_per_node = 0 if args.check else 1
    if args.nodes < 1 or args.gpus_per_node < 0:
        raise InputError("--nodes must be at least 1 and --gpus-per-node at least 0")
    if args.check:
        model_config = read_model_config(config, args.model_config) if args.model_config else None
        problems = check_plan(config, args.nodes, args.gpus_per_node, args.gpu, model_config)
        for problem in problems:
            print(f"fcdist plan: cannot run: {problem}", file=sys.stderr)
        return 1 if problems else 0
    hardware = Hardware(args.nodes, args.gpus_per_node, args.gpu or "H200", packages_of(args.installed))
    model_config = read_model_config(config, args.model_config)
    try:
        plan = make_plan(config, hardware, model_config)
    except SubmitError as e:
        raise InputError(str(e)) from e
    print("\n".join(report(plan, hardware, model_config, config_args, args.infer_shards)))
    for problem in plan.problems:
        print(f"fcdist plan: cannot run: {' '.join(problem.split())}", file=sys.stderr)
    if not plan.problems:
        print("\nno problems found: the job can start and its micro-batch fits")
    return 1 if plan.problems else 0


if __name__ == "__main__":
    sys.exit(main())
