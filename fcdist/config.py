"""One typed config for a whole fcdist job: model, data, lora/quantization, training, distributed, output.

Loaded from YAML (``--config configs/jobs/X.yaml``), overridden on the command line with ``key.sub=value``
(values parsed as YAML, so ``train.max_steps=20`` is an int and ``lora.target_modules=[qkv_proj]`` a list),
validated with errors that name the key, and saved resolved as ``runs/<name>/config.yaml``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from fcdist.errors import InputError


class ConfigError(InputError):
    """A config problem, always naming the key (and the file when there is one)."""


@dataclass
class ModelConfig:
    name_or_path: str = "microsoft/Phi-3-mini-128k-instruct"
    """Hub id or local folder of the base model (loaded with from_pretrained)."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) to pin; None takes the default branch."""
    trust_remote_code: bool = False
    """Run model code shipped with the checkpoint; off by default (Phi-3 is native to transformers)."""
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa", "flex_attention", "eager"] = "auto"
    """Attention backend; auto = flash_attention_2 when flash_attn is importable, else sdpa."""
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """Compute dtype; auto = bf16 where the device supports it, else fp16 on GPU, fp32 on CPU."""


@dataclass
class DataConfig:
    source: str = "Salesforce/xlam-function-calling-60k"
    """Hub dataset id (gated: token from HF_TOKEN) or a local .json/.jsonl/.parquet file."""
    revision: str | None = None
    """Hub dataset revision to pin; part of the preprocessing fingerprint."""
    split: str = "train"
    """Split of the hub dataset to read."""
    on_bad_row: Literal["error", "skip"] = "error"
    """error: stop at the first bad row with its id and reason; skip: drop it and report counts by reason."""
    heldout_fraction: float = 0.02
    """Fraction of rows held out for inference and scoring, chosen by a hash of each row's id."""
    template: Literal["seed", "chat"] = "seed"
    """seed: the notebook's <user>/<tools>/<calls> format byte for byte; chat: the tokenizer's chat template."""
    train_on: Literal["completion", "all"] = "completion"
    """completion: loss on the calls, </calls> and the end token (eos; chat: end of turn); all: every token (seed)."""
    max_length: int = 512
    """Tokens per training row (packed row length, or the truncation length unpacked)."""
    packing: bool = True
    """Pack several documents per row (best-fit decreasing); false = one padded document per row."""
    overlong: Literal["truncate", "drop"] = "truncate"
    """What to do with a document longer than max_length: truncate it (the seed) or drop it; counted either way."""
    packed_dir: str = ""
    """Where preprocessing writes shards and the manifest; empty = <output.root>/<output.name>/packed."""
    num_shards: int = 1
    """Default number of preprocessing shards (a SLURM array overrides it with SLURM_ARRAY_TASK_COUNT)."""
    num_proc: int = 0
    """Tokenizer worker processes per shard; 0 = the cores available to this process."""


@dataclass
class QuantConfig:
    load_in_4bit: bool = True
    """Load the frozen base in 4 bits with bitsandbytes (QLoRA); false = bf16/fp16 base."""
    quant_type: Literal["nf4", "fp4"] = "nf4"
    """4-bit data type."""
    double_quant: bool = True
    """Quantize the quantization constants too (saves about 0.4 bits per parameter)."""
    quant_storage: Literal["auto", "uint8", "bf16", "fp16", "fp32"] = "auto"
    """Storage dtype of 4-bit weights; auto = uint8, or the compute dtype under ZeRO-3 so shards can be made."""
    dequantized_copy: bool = False
    """Dequantize the 4-bit base once after loading and train on that 16-bit copy: QLoRA's NF4-rounded weights without a dequantization per matmul, at 2 bytes per parameter instead of ~0.55."""


@dataclass
class LoraConfig:
    enabled: bool = True
    """Train LoRA adapters; false = full fine-tuning (needs quant.load_in_4bit=false)."""
    r: int = 16
    """LoRA rank."""
    alpha: int = 16
    """LoRA scaling numerator (scale = alpha / r)."""
    dropout: float = 0.05
    """Dropout on the LoRA input."""
    target_modules: str | list[str] = "all-linear"
    """Modules to adapt; all-linear resolves to the model's real linear names (Phi-3: qkv_proj, o_proj, gate_up_proj, down_proj)."""


@dataclass
class TrainConfig:
    global_batch_size: int = 60
    """Rows per optimizer step over all ranks; micro-batch x accumulation x world size must equal it."""
    tune: Literal["auto", "manual"] = "manual"
    """auto: on a GPU, choose micro_batch_size, gradient_checkpointing, torch_compile, liger_kernel and quant.dequantized_copy from its memory and print why (fcdist/train/tune.py); manual: use them as set."""
    micro_batch_size: int = 0
    """Rows per forward pass per rank; 0 = the largest divisor of the per-rank batch not above max_micro_batch."""
    max_micro_batch: int = 8
    """Cap for the derived micro-batch (memory bound)."""
    max_steps: int = 1000
    """Optimizer steps to train."""
    learning_rate: float = 1e-4
    """Peak learning rate."""
    lr_scheduler: Literal["linear", "cosine", "constant_with_warmup"] = "linear"
    """Decay after warmup."""
    warmup_ratio: float = 0.1
    """Fraction of max_steps spent warming up linearly from 0."""
    optimizer: Literal["adamw_8bit", "paged_adamw_8bit", "adamw_torch", "adamw_torch_fused"] = "adamw_8bit"
    """Optimizer; the 8-bit ones come from bitsandbytes (the seed used adamw_8bit)."""
    weight_decay: float = 0.0
    """Decoupled weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0 disables)."""
    save_steps: int = 250
    """Write a checkpoint every this many steps (and at the end)."""
    save_total_limit: int = 2
    """Keep this many most recent complete checkpoints."""
    resume_fallback: bool = False
    """Resume from the newest complete checkpoint when the latest fails its file check, instead of refusing."""
    logging_steps: int = 10
    """Write a metrics.jsonl line every this many steps."""
    seed: int = 42
    """Seed for weights of new modules, dropout and data order."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass (less memory, about a third more compute)."""
    liger_kernel: bool = False
    """Use Liger Kernel's fused Triton ops (RMSNorm, RoPE, SwiGLU, fused linear cross-entropy) when installed."""
    torch_compile: bool = False
    """Compile the model with torch.compile."""
    shuffle: bool = True
    """Shuffle packed rows each epoch (deterministically from seed)."""


@dataclass
class DistributedConfig:
    accelerate_config: str = "configs/accelerate/single_gpu.yaml"
    """Accelerate launch config the SLURM templates and submitit use (configs/accelerate/*.yaml)."""
    timeout_minutes: int = 30
    """Collective timeout before a stuck rank fails the job instead of hanging it."""
    hang_step_multiple: float = 10.0
    """A rank with no completed step for this many median step times is hung: every rank's stack is written and the job exits 3."""
    hang_min_seconds: float = 300.0
    """Never call a rank hung sooner than this after its last completed step (guards fast steps against jitter)."""
    hang_startup_minutes: float = 20.0
    """The hang limit before the first step, during a checkpoint save and after the last one (loading, compiling, writing)."""


@dataclass
class InferConfig:
    backend: Literal["hf", "vllm"] = "hf"
    """hf: transformers generate with batches sorted by length; vllm: vLLM with the LoRA adapter (if installed)."""
    max_new_tokens: int = 256
    """Generation budget per prompt."""
    batch_size: int = 16
    """Prompts per generate call (hf backend)."""
    cache: Literal["auto", "dynamic", "static"] = "auto"
    """KV cache of the hf backend; static is preallocated (prompt + max_new_tokens); auto = static on a CUDA GPU, else dynamic."""
    compile: Literal["auto", "always", "never"] = "auto"
    """torch.compile the decoding step (hf backend); needs a static cache on CUDA; auto = compile exactly there."""


@dataclass
class DemoConfig:
    synth_rows: int = 2000
    """Synthetic rows `fcdist demo` writes to data.source when that file does not exist yet."""
    synth_seed: int = 0
    """Seed of those rows and of the model it builds (the tokenizer is trained on rows of this seed)."""
    model_size: Literal["tiny", "small", "100m"] = "tiny"
    """Size of the random-init model `fcdist demo` builds at model.name_or_path when that folder does not exist."""
    unseen_functions: float = 0.0
    """Fraction of the synthetic catalogue's functions kept out of training, scored apart as unseen functions."""


@dataclass
class EvalConfig:
    bfcl_dir: str | None = None
    """A folder of BFCL files (question files, possible_answer/); the chain then ends with BFCL stages (fcdist eval bfcl)."""


@dataclass
class OutputConfig:
    root: str = "runs"
    """Folder that holds one folder per run."""
    name: str = "run"
    """Run name: everything of the job lives in <root>/<name>/."""
    report_to: Literal["tensorboard", "none"] = "tensorboard"
    """Extra metric sink beside metrics.jsonl."""


@dataclass
class JobConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output.root) / self.output.name

    @property
    def packed_dir(self) -> Path:
        return Path(self.data.packed_dir) if self.data.packed_dir else self.run_dir / "packed"


# ---------------------------------------------------------------- building from dicts


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return value in typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "null")


def _build(cls: type, values: dict, where: str, prefix: str = "") -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: '{prefix.rstrip('.') or '<top>'}' must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{prefix}{unknown[0]}' (known under '{prefix or '<top>'}': {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in values.items():
        annotation = hints[name]
        if dataclasses.is_dataclass(annotation):
            kwargs[name] = _build(annotation, value, where, f"{prefix}{name}.")
            continue
        if annotation is float and isinstance(value, str):
            value = _float_or_same(value)
        if not _type_ok(value, annotation):
            hint = f" (write '{value}' in quotes for text)" if annotation in (str, str | None) else ""
            raise ConfigError(f"{where}: '{prefix}{name}' = {value!r} is invalid: expected {_describe(annotation)}{hint}")
        kwargs[name] = float(value) if annotation is float else value
    return cls(**kwargs)


def _float_or_same(text: str):
    """PyYAML reads ``5e-3`` (no dot) as a string, YAML 1.1's rule; a float field still means the number."""
    try:
        return float(text)
    except ValueError:
        return text


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(overrides: list[str]) -> dict:
    """``["train.max_steps=20", "lora.r=8"]`` -> nested dict; values are parsed as YAML scalars/lists."""
    nested: dict = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"command line: override {item!r} must look like section.key=value")
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _override_value(key, raw)
    return nested


def _override_value(key: str, raw: str) -> Any:
    """The value of ``key=raw``: parsed as YAML, except that a plain-text field (a name, path or revision)
    keeps the text as typed where YAML would read a number or a date (``output.name=123``, ``model.revision=0123``)."""
    value = yaml.safe_load(raw) if raw != "" else ""
    text_field = _annotation_of(key) in (str, str | None)
    if text_field and value is not None and not isinstance(value, (str, bool, list, dict)):
        return raw
    return value


def _annotation_of(key: str) -> Any:
    """The type of the field ``section.key`` of JobConfig, or None when there is no such field."""
    cls: Any = JobConfig
    for part in key.split("."):
        if not dataclasses.is_dataclass(cls):
            return None
        cls = typing.get_type_hints(cls).get(part)
    return cls


def load_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> JobConfig:
    """Defaults <- YAML file <- command-line overrides, then validated."""
    values: dict = {}
    where = "defaults"
    if path is not None:
        where = str(path)
        values = _read_yaml(Path(path))
    if overrides:
        values = _merge(values, parse_overrides(overrides))
        where = f"{where} + command line"
    config = _build(JobConfig, values, where)
    validate(config, where)
    return config


def _read_yaml(path: Path) -> dict:
    """The mapping in a config file; an empty, binary or malformed file is a ConfigError naming it."""
    if not path.is_file():
        raise ConfigError(f"--config: no such file: {path}")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a YAML text file (byte {e.start} is not UTF-8)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    if values is None:
        raise ConfigError(f"{path}: the file is empty (expected sections such as model:, data:, train:)")
    return values


def validate(config: JobConfig, where: str = "config") -> None:
    """Checks across fields that types alone cannot express."""

    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{where}: '{key}' {message}")

    t, d = config.train, config.data
    need(0.0 <= d.heldout_fraction < 1.0, "data.heldout_fraction", "must be in [0, 1)")
    need(d.max_length >= 16, "data.max_length", "must be at least 16")
    need(d.num_shards >= 1, "data.num_shards", "must be at least 1")
    need(config.demo.synth_rows >= 1, "demo.synth_rows", "must be at least 1")
    need(0.0 <= config.demo.unseen_functions < 1.0, "demo.unseen_functions", "must be in [0, 1)")
    need(t.global_batch_size >= 1, "train.global_batch_size", "must be at least 1")
    need(t.micro_batch_size >= 0, "train.micro_batch_size", "must be 0 (derive) or positive")
    need(t.max_steps >= 1, "train.max_steps", "must be at least 1")
    need(t.save_steps >= 1, "train.save_steps", "must be at least 1")
    need(t.save_total_limit >= 1, "train.save_total_limit", "must be at least 1")
    need(t.logging_steps >= 1, "train.logging_steps", "must be at least 1")
    need(0.0 <= t.warmup_ratio < 1.0, "train.warmup_ratio", "must be in [0, 1)")
    need(t.learning_rate > 0, "train.learning_rate", "must be positive")
    need(config.lora.enabled or not config.quant.load_in_4bit, "lora.enabled",
         "is false (full fine-tuning) but quant.load_in_4bit is true: 4-bit weights cannot be trained; set quant.load_in_4bit=false")
    need(config.lora.r >= 1, "lora.r", "must be at least 1")
    need(config.lora.alpha > 0, "lora.alpha", "must be positive")
    need(0.0 <= config.lora.dropout < 1.0, "lora.dropout", "must be in [0, 1)")
    need(t.max_micro_batch >= 1, "train.max_micro_batch", "must be at least 1")
    need(t.max_grad_norm >= 0, "train.max_grad_norm", "must be 0 (no clipping) or positive")
    need(t.weight_decay >= 0, "train.weight_decay", "must be 0 or positive")
    need(config.distributed.timeout_minutes > 0, "distributed.timeout_minutes", "must be positive")
    need(config.infer.batch_size >= 1, "infer.batch_size", "must be at least 1")
    need(config.infer.max_new_tokens >= 1, "infer.max_new_tokens", "must be at least 1")
    need(d.num_proc >= 0, "data.num_proc", "must be 0 (all cores) or positive")
    for key in ("hang_step_multiple", "hang_min_seconds", "hang_startup_minutes"):
        need(getattr(config.distributed, key) > 0, f"distributed.{key}", "must be positive")
    need("/" not in config.output.name and config.output.name not in ("", ".", ".."), "output.name", "must be a plain folder name")


def to_dict(config: JobConfig) -> dict:
    return dataclasses.asdict(config)


RUN_CONFIG = "config.yaml"  # the resolved config saved in runs/<name>/, what gather and infer --run start from


def save_resolved(config: JobConfig, path: str | os.PathLike | None = None) -> Path:
    """Write the fully resolved config (every field) atomically, by default to runs/<name>/config.yaml."""
    from fcdist.atomic import write_text_atomic

    path = Path(path) if path else config.run_dir / RUN_CONFIG
    write_text_atomic(path, yaml.safe_dump(to_dict(config), sort_keys=False))
    return path


def add_config_arguments(parser, config_help: str | None = "job config YAML (configs/jobs/*.yaml)", required: bool = True,
                         default: str | None = None) -> None:
    """``--config C`` and the ``key.sub=value`` overrides, for every stage that reads a job config.

    ``required=False`` for a stage with a fallback (``default``, a run's saved config, the built-in defaults);
    ``config_help=None`` for a stage that reads a run's saved config only (overrides, no --config).
    """
    if config_help is not None:
        parser.add_argument("--config", required=required, default=default, metavar="C", help=config_help)
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="override config values, e.g. train.max_steps=20")


def load_run_config(run_dir: str | os.PathLike, overrides: list[str] | None = None,
                    trust_remote_code: bool = False) -> JobConfig:
    """A run's saved ``config.yaml`` with command-line overrides. ``model.trust_remote_code`` comes from the
    user's ``--trust-remote-code`` alone: a run folder may come from someone else, and the switch runs code
    shipped with a model, so neither its saved config nor an override turns it on."""
    path = Path(run_dir) / RUN_CONFIG
    model = parse_overrides(overrides or []).get("model")
    if isinstance(model, dict) and model.get("trust_remote_code") is True:
        raise ConfigError(f"{path} + command line: 'model.trust_remote_code' cannot be turned on for a run folder by "
                          "an override; pass --trust-remote-code, or set it in a job config you pass with --config")
    config = load_config(path, overrides)
    config.model.trust_remote_code = trust_remote_code
    return config


def field_docs(cls: type) -> dict[str, str]:
    """The one-line doc of each field (the string literal under it), for --help and tests."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for stmt, nxt in zip(body, body[1:]):
        if isinstance(stmt, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[stmt.target.id] = nxt.value.value
    return docs
