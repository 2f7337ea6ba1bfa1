"""train.tune=auto: the memory estimate against the peaks measured on the H200, and the plan it picks per GPU size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import Phi3Config

from fcdist.config import load_config
from fcdist.train.tune import GIB, PLANS, available_plans, choose, model_shape, peak_bytes, tune

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench/results"
PHI3_MINI = Phi3Config(hidden_size=3072, intermediate_size=8192, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=32, vocab_size=32064)
COPY_COMPILE, COPY_COMPILE_CKPT, NF4_LIGER_CKPT = PLANS
# Benchmark rows whose settings are one of the plans: (results file, row, plan, micro-batch of 512-token rows)
MEASURED = [
    ("train-speed-h200-2026-12-01-b.json", "copy-mb20-compile", COPY_COMPILE, 20),
    ("train-speed-h200-2026-12-01-c.json", "copy-mb30-compile", COPY_COMPILE, 30),
    ("train-speed-h200-2026-12-01-c.json", "copy-ckpt-mb30-compile", COPY_COMPILE_CKPT, 30),
    ("train-speed-h200-2026-12-01.json", "nf4-ckpt-mb60", NF4_LIGER_CKPT, 60),
]


def shipped(*overrides: str):
    return load_config(ROOT / "configs/jobs/phi3-xlam-qlora.yaml", list(overrides))


def test_phi3_mini_has_its_parameter_count():
    assert model_shape(PHI3_MINI).parameters == pytest.approx(3.82e9, rel=0.005)


@pytest.mark.parametrize("results, row, plan, micro", MEASURED, ids=[m[1] for m in MEASURED])
def test_the_estimate_is_within_5_percent_of_the_measured_peak(results, row, plan, micro):
    measured = json.loads((RESULTS / results).read_text())["results"][row]["peak_gib"]
    estimate = peak_bytes(shipped("data.max_length=512"), model_shape(PHI3_MINI), plan, micro * 512) / GIB
    assert estimate == pytest.approx(measured, rel=0.05)


@pytest.mark.parametrize("gpu_gib, max_length, plan, micro", [
    (140, 512, COPY_COMPILE, 30),       # H200: the fastest measured (3.20x)
    (80, 512, COPY_COMPILE, 20),        # H100 80GB: 61 GiB measured
    (24, 512, COPY_COMPILE_CKPT, 30),   # a 24 GB card: 19.1 GiB measured
    (80, 1280, COPY_COMPILE, 6),        # the shipped rows of 1280: fewer rows, about as many tokens
])
def test_auto_picks_the_fastest_plan_that_fits(gpu_gib, max_length, plan, micro):
    config = shipped(f"data.max_length={max_length}")
    chosen = choose(config, model_shape(PHI3_MINI), list(PLANS), 60, gpu_gib * GIB)
    assert chosen is not None and chosen[:2] == (plan, micro)


def test_without_a_compiler_or_under_zero3_auto_steps_down_and_says_why():
    plans, notes = available_plans(shipped(), zero_stage=0, liger=True, compile_problem="triton is not installed")
    assert plans == [NF4_LIGER_CKPT] and notes == ["no torch.compile: triton is not installed"]
    plans, notes = available_plans(shipped(), zero_stage=3, liger=False, compile_problem=None)
    assert plans == [] and "no torch.compile under DeepSpeed ZeRO" in notes


def test_auto_changes_nothing_without_a_gpu_or_when_manual():
    config = shipped()
    assert config.train.tune == "auto"  # the shipped config is fast by default
    assert tune(config, PHI3_MINI, 60, 0, False, gpu_bytes=None) == (config, "train.tune=auto: no GPU, settings as configured")
    manual = shipped("train.tune=manual")
    assert tune(manual, PHI3_MINI, 60, 0, False, gpu_bytes=80 * GIB) == (manual, "")
