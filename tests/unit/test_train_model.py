"""Model-side choices: refusals, LoRA target resolution, quantization storage, batch plans, parameter counts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from fcdist.config import load_config
from fcdist.errors import SetupError
from fcdist.model.lora import resolve_target_modules
from fcdist.model.quant import quantization_config
from fcdist.train.model import Choices, Runtime, load_base_model, parameter_counts, resolve_choices, setup_problems
from fcdist.train.trainer import plan_batches

ROOT = Path(__file__).resolve().parents[2]
CPU = Runtime(gpu=False, world_size=1, local_rank=0, zero_stage=0, offload_params=False, offload_optimizer=False,
              flash_attn=False, liger=False, mixed_precision_env="no")
GPU = replace(CPU, gpu=True)


def seed_config(*overrides: str):
    return load_config(ROOT / "configs/jobs/phi3-xlam-qlora.yaml", list(overrides))


def tiny_config(tiny_model_dir, *overrides: str):
    return load_config(ROOT / "configs/jobs/tiny-cpu.yaml", [f"model.name_or_path={tiny_model_dir}", *overrides])


def only_problem(config, runtime: Runtime, dtype: str = "bf16", attention: str = "sdpa") -> str:
    problems = setup_problems(config, runtime, dtype, attention)
    assert len(problems) == 1, problems
    return problems[0]


def test_the_seed_recipe_resolves_on_cpu_to_fp32_and_sdpa():
    choices = resolve_choices(seed_config(), CPU)
    assert (choices.dtype, choices.attn_implementation, choices.flatten_rows) == ("fp32", "sdpa", False)


def test_flash_attention_is_chosen_when_installed_and_flattens_rows():
    choices = resolve_choices(seed_config("model.dtype=bf16"), replace(GPU, flash_attn=True))
    assert (choices.attn_implementation, choices.flatten_rows) == ("flash_attention_2", True)


@pytest.mark.parametrize("overrides,runtime,dtype,attention,names", [
    (["model.dtype=fp16"], CPU, "fp16", "sdpa", "model.dtype=fp16"),
    (["model.attn_implementation=flash_attention_2"], GPU, "bf16", "flash_attention_2", "flash_attn is not installed"),
    (["train.liger_kernel=true"], GPU, "bf16", "sdpa", "liger_kernel is not installed"),
    (["train.liger_kernel=true"], replace(CPU, liger=True), "fp32", "sdpa", "needs a GPU"),
    (["train.optimizer=adamw_torch"], replace(GPU, zero_stage=3, offload_params=True, offload_optimizer=True), "bf16",
     "sdpa", "ZeRO-3 parameter offload"),
    (["quant.load_in_4bit=false", "train.optimizer=adamw_8bit"], replace(GPU, zero_stage=3, offload_optimizer=True),
     "bf16", "sdpa", "train.optimizer=adamw_8bit"),
    ([], replace(GPU, mixed_precision_env="fp16"), "bf16", "sdpa", "mixed_precision=fp16"),
])
def test_combinations_that_cannot_work_are_refused_naming_the_setting(overrides, runtime, dtype, attention, names):
    assert names in only_problem(seed_config(*overrides), runtime, dtype, attention)


def test_flash_attention_without_a_gpu_or_in_fp32_is_refused():
    problems = setup_problems(seed_config(), replace(CPU, flash_attn=True), "fp32", "flash_attention_2")
    assert any("needs a GPU" in p for p in problems) and any("fp16/bf16 only" in p for p in problems)


def test_resolve_choices_raises_the_first_problem():
    with pytest.raises(SetupError, match="flash_attn is not installed"):
        resolve_choices(seed_config("model.attn_implementation=flash_attention_2"), GPU)


def test_4bit_storage_is_the_compute_dtype_under_zero3_only():
    quant = seed_config().quant
    assert quantization_config(quant, "bf16", zero_stage=0).bnb_4bit_quant_storage == torch.uint8
    zero3 = quantization_config(quant, "bf16", zero_stage=3)
    assert zero3.bnb_4bit_quant_storage == torch.bfloat16
    assert (zero3.bnb_4bit_quant_type, zero3.bnb_4bit_use_double_quant, zero3.bnb_4bit_compute_dtype) == ("nf4", True, torch.bfloat16)
    assert quantization_config(seed_config("quant.load_in_4bit=false").quant, "bf16", zero_stage=0) is None


def test_all_linear_resolves_to_phi3_names_without_the_head(tiny_model_dir):
    model = load_base_model(tiny_config(tiny_model_dir), Choices("fp32", "sdpa", False), CPU)
    assert resolve_target_modules(model, "all-linear") == ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"]
    assert resolve_target_modules(model, ["qkv_proj"]) == ["qkv_proj"]
    with pytest.raises(SetupError, match="q_proj matches no linear layer.*qkv_proj"):
        resolve_target_modules(model, ["q_proj", "o_proj"])
    assert model.config.use_cache is False  # a cache would let packed documents see each other


def test_the_mfu_flop_formula_matches_torchs_flop_counter(tiny_model_dir):
    """metrics.py's FLOPs per step against torch.utils.flop_counter on the tiny LoRA model: one 64-token
    document, forward and backward, eager attention (the counter has no formula for CPU sdpa). Eager attention
    computes the whole 64 x 64 square, so the formula gets the whole square here; in training it counts the
    causal pairs only, the useful half. The formula is 2% high here: layer 0's input needs no gradient."""
    from torch.utils.flop_counter import FlopCounterMode

    from fcdist.train.metrics import FlopModel
    from fcdist.train.model import load_model

    model = load_model(tiny_config(tiny_model_dir), Choices("fp32", "eager", False), CPU)
    ids = torch.randint(4, 1000, (1, 64), generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
    trainable, frozen = parameter_counts(model)
    shape = model.config
    formula = FlopModel(trainable, frozen, shape.num_hidden_layers, shape.hidden_size).step_flops(64, 64 * 64)
    assert counter.get_total_flops() == pytest.approx(formula, rel=0.03)


def test_parameter_counts_see_4bit_weights_at_their_real_size(tiny_model_dir, cpu_4bit):
    choices = Choices("fp32", "sdpa", False)
    full = load_base_model(tiny_config(tiny_model_dir), choices, CPU)
    quantized = load_base_model(tiny_config(tiny_model_dir, "quant.load_in_4bit=true"), choices, CPU)
    embedding = full.get_input_embeddings().weight.numel()
    assert sum(parameter_counts(full)) == sum(p.numel() for p in full.parameters()) - embedding
    assert sum(parameter_counts(quantized)) == sum(parameter_counts(full))


@pytest.mark.parametrize("global_batch,micro,world,expected", [
    (60, 0, 1, (6, 10)),  # the seed on one GPU: largest divisor of 60 up to max_micro_batch 8
    (60, 0, 4, (5, 3)),
    (60, 4, 1, (4, 15)),
    (8, 0, 2, (4, 1)),
])
def test_batch_plan_keeps_the_global_batch(global_batch, micro, world, expected):
    config = seed_config(f"train.global_batch_size={global_batch}", f"train.micro_batch_size={micro}")
    plan = plan_batches(config.train, world)
    assert (plan.micro_batch, plan.accumulation) == expected
    assert plan.micro_batch * plan.accumulation * world == global_batch


def test_batch_plans_that_do_not_divide_are_refused():
    with pytest.raises(SetupError, match="multiple of 8"):
        plan_batches(seed_config().train, 8)
    with pytest.raises(SetupError, match="micro_batch_size=7 does not divide the 60 rows"):
        plan_batches(seed_config("train.micro_batch_size=7").train, 1)
