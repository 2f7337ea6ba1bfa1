"""fcdist plan on CPU: the tiny job (choices, manifest, commands), the Phi-3 job on one H100 and on 2 nodes x 4
(the memory estimate against tune.py's and the H200 peaks of the speed benchmark), and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoConfig, Phi3Config

from fcdist.config import load_config
from fcdist.plan import GIB, Hardware, check_plan, main, make_plan
from fcdist.train.trainer import BatchPlan
from fcdist.train.tune import (PLANS, activation_bytes, available_plans, choose, frozen_bytes, model_shape, peak_bytes,
                               trainable_parameters)

ROOT = Path(__file__).resolve().parents[2]
TINY, PHI3 = "configs/jobs/tiny-cpu.yaml", "configs/jobs/phi3-xlam-qlora.yaml"
GPU_EXTRA = frozenset({"triton", "liger_kernel"})  # the nodes of a GPU cluster (pip install -e '.[gpu]')
MULTINODE_ZERO3 = "distributed.accelerate_config=configs/accelerate/multinode_zero3.yaml"


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the configs' relative paths, like the submitters


@pytest.fixture(scope="module")
def phi3_dir(tmp_path_factory) -> Path:
    """Phi-3-mini's architecture (config.json only): no model hub here."""
    folder = tmp_path_factory.mktemp("phi3")
    Phi3Config(hidden_size=3072, intermediate_size=8192, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=32064).save_pretrained(folder)
    return folder


def phi3(phi3_dir, tmp_path, *overrides: str) -> list[str]:
    return ["--config", PHI3, f"model.name_or_path={phi3_dir}", f"output.root={tmp_path}", *overrides]


def plan_of(args: list[str], nodes: int, gpus: int, gpu: str):
    config = load_config(args[1], args[2:])
    return make_plan(config, Hardware(nodes, gpus, gpu, GPU_EXTRA), AutoConfig.from_pretrained(config.model.name_or_path))


def test_tiny_job_on_cpu_prints_choices_manifest_and_commands(tiny_model_dir, synth_data_file, tmp_path, capsys):
    from fcdist.preprocess.shards import main as preprocess

    args = ["--config", TINY, f"model.name_or_path={tiny_model_dir}", f"data.source={synth_data_file}",
            f"output.root={tmp_path}"]
    assert main([*args, "--gpus-per-node", "0"]) == 0
    out = capsys.readouterr().out
    assert "dtype           fp32" in out and "ZeRO stage      0" in out
    assert "LoRA targets    down_proj, gate_up_proj, o_proj, qkv_proj (r=16)" in out
    assert "      1  8 x 1" in out and "none yet" in out and "no problems found" in out
    assert f"--output={tmp_path}/tiny-cpu/slurm/train-%j.out slurm/train.sh {' '.join(args)})" in out
    assert "--config_file configs/accelerate/cpu_multiprocess.yaml --num_machines 1 --num_processes 1" in out
    assert f"fcdist submit --cluster slurm --nodes 1 --gpus-per-node 0 --infer-shards 2 {' '.join(args)}" in out

    assert preprocess(args) == 0
    capsys.readouterr()
    main([*args, "--gpus-per-node", "0"])
    assert "packed/manifest.json: matches the config" in capsys.readouterr().out
    main([*args, "--gpus-per-node", "0", "data.max_length=256"])
    assert "the packed data was made with other settings: data.max_length (config: 256, manifest: 512)" in capsys.readouterr().out


COPY = ["quant.dequantized_copy=true", "train.torch_compile=true"]
# The GPU rows of the speed benchmark (one H200, rows of 512), each as tune=manual settings on a GPU it fits:
# (results file suffix, row, tune.py's plan, GPU, overrides)
MEASURED = [
    ("-b", "copy-mb20-compile", PLANS[0], "H100", [*COPY, "train.micro_batch_size=20", "train.gradient_checkpointing=false"]),
    ("-c", "copy-mb30-compile", PLANS[0], "H200", [*COPY, "train.micro_batch_size=30", "train.gradient_checkpointing=false"]),
    ("-c", "copy-ckpt-mb30-compile", PLANS[1], "A10", [*COPY, "train.micro_batch_size=30"]),
    ("", "nf4-ckpt-mb60", PLANS[2], "L40S", ["train.micro_batch_size=60", "train.liger_kernel=true"]),
]


@pytest.mark.parametrize("suffix, row, tune_plan, gpu, settings", MEASURED, ids=[m[1] for m in MEASURED])
def test_one_gpu_estimate_is_tunes_and_within_15_percent_of_the_measured_peak(phi3_dir, tmp_path, suffix, row,
                                                                             tune_plan, gpu, settings):
    plan = plan_of(phi3(phi3_dir, tmp_path, "train.tune=manual", "data.max_length=512", *settings), 1, 1, gpu)
    measured = json.loads((ROOT / f"bench/results/train-speed-h200-2026-12-01{suffix}.json").read_text())
    assert plan.problems == []
    assert plan.memory.total / GIB == pytest.approx(measured["results"][row]["peak_gib"], rel=0.15)
    tokens = plan.batch.micro_batch * 512
    assert plan.memory.total == pytest.approx(peak_bytes(plan.config, model_shape(phi3_config(phi3_dir)), tune_plan, tokens))


def phi3_config(phi3_dir):
    return AutoConfig.from_pretrained(phi3_dir)


def test_auto_on_one_h100_shows_what_training_would_pick(phi3_dir, tmp_path, capsys):
    args = phi3(phi3_dir, tmp_path, "data.max_length=512")
    assert main([*args, "--gpu", "H100", "--installed", "triton,liger_kernel"]) == 0
    out = capsys.readouterr().out
    config = load_config(PHI3, args[2:])
    plans, _ = available_plans(config, 0, True, None)
    chosen_plan, micro, peak = choose(config, model_shape(phi3_config(phi3_dir)), plans, 60, 81559 * 2**20)
    assert (chosen_plan, micro) == (PLANS[0], 20)  # copy + compile: 61 GiB measured (train-speed-...-b.json)
    assert f"copy + compile, no checkpointing, micro-batch 20 x 512 tokens, estimated peak {peak / GIB:.1f}" in out
    assert f"  total {' ' * 29}{peak / GIB:>7.1f} GiB" in out and "      1  20 x 3" in out


def test_two_nodes_of_four_shard_what_zero_shards(phi3_dir, tmp_path, capsys):
    args = phi3(phi3_dir, tmp_path, MULTINODE_ZERO3, "train.global_batch_size=48")
    plan = plan_of(args, 2, 4, "H100")
    assert plan.problems == [] and plan.runtime.zero_stage == 3
    assert plan.batch == BatchPlan(global_batch=48, micro_batch=6, accumulation=1, world_size=8)
    assert not plan.config.train.torch_compile and plan.config.train.liger_kernel  # no compile under ZeRO
    config, shape, nf4 = plan.config, model_shape(phi3_config(phi3_dir)), PLANS[2]
    trainable = trainable_parameters(config, shape)
    # ZeRO-3: weights, gradients and moments are divided by the 8 ranks; activations are not
    assert plan.memory.model == pytest.approx((frozen_bytes(config, shape, nf4) + 4 * trainable) / 8)
    assert plan.memory.optimizer == pytest.approx(12 * trainable / 8)
    assert plan.memory.activations == activation_bytes(shape, nf4, 6 * 1280)
    assert plan.memory.total < peak_bytes(config, shape, nf4, 6 * 1280)

    assert main([*args, "--gpu", "H100", "--nodes", "2", "--gpus-per-node", "4", "--installed", "liger_kernel"]) == 0
    out = capsys.readouterr().out
    assert "--nodes=2 --gpus-per-node=4 --output=" in out and "--num_machines 2 --num_processes 8" in out
    assert "      8  6 x 1" in out and "<- planned" in out


def test_a_micro_batch_that_cannot_fit_is_refused_with_one_that_does(phi3_dir, tmp_path, capsys):
    args = phi3(phi3_dir, tmp_path, "train.tune=manual", "train.micro_batch_size=60")
    config = load_config(PHI3, args[2:])
    problems = check_plan(config, 1, 1, "A10", AutoConfig.from_pretrained(phi3_dir))
    assert len(problems) == 1 and problems[0].startswith("train.micro_batch_size=60 does not fit one A10: an estimated ")
    assert "train.micro_batch_size=15 fits" in problems[0]
    assert main([*args, "--gpu", "A10"]) == 1
    assert "DOES NOT FIT" in capsys.readouterr().out


def test_a_world_size_that_does_not_divide_the_global_batch_is_one_line(phi3_dir, tmp_path, capsys):
    args = phi3(phi3_dir, tmp_path, MULTINODE_ZERO3)
    assert main([*args, "--nodes", "2", "--gpus-per-node", "4"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("fcdist plan")]
    assert errors == ["fcdist plan: cannot run: train.global_batch_size=60 cannot be split evenly over 8 processes; "
                      "make it a multiple of 8"]


def test_check_plan_names_what_cannot_start(phi3_dir, tmp_path):
    config = load_config(PHI3, phi3(phi3_dir, tmp_path)[2:])
    model_config = AutoConfig.from_pretrained(phi3_dir)
    assert check_plan(config, 1, 1, "H100", model_config) == []
    one_machine = check_plan(config, 2, 4, "H100", model_config)  # single_gpu.yaml on two nodes
    assert len(one_machine) == 1 and "is a one-machine Accelerate config" in one_machine[0]
    targets = load_config(PHI3, phi3(phi3_dir, tmp_path, "lora.target_modules=[q_proj]")[2:])
    assert check_plan(targets, 1, 1, "H100", model_config) == [
        "lora.target_modules: q_proj matches no linear layer of Phi3ForCausalLM; its linear layers are "
        "down_proj, gate_up_proj, o_proj, qkv_proj"]
    assert check_plan(config, 1, 1, "H300", model_config)[0].startswith("--gpu H300: unknown GPU type")
