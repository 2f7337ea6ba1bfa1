"""Every shipped job config loads; overrides, validation and the resolved copy behave."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from fcdist import config as cfg

ROOT = Path(__file__).resolve().parents[2]
JOB_CONFIGS = sorted((ROOT / "configs" / "jobs").glob("*.yaml"))


@pytest.mark.parametrize("path", JOB_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_job_config_loads(path):
    config = cfg.load_config(path)
    assert config.output.name
    first_lines = path.read_text().splitlines()[:6]
    assert any("fcdist" in line or "accelerate" in line for line in first_lines), "a config opens with the command that runs it"


def test_seed_recipe_values():
    c = cfg.load_config(ROOT / "configs/jobs/phi3-xlam-seed-exact.yaml")
    assert c.model.name_or_path == "microsoft/Phi-3-mini-128k-instruct"
    assert c.data.source == "Salesforce/xlam-function-calling-60k"
    assert (c.quant.load_in_4bit, c.quant.quant_type, c.quant.double_quant) == (True, "nf4", True)
    assert (c.lora.r, c.lora.alpha, c.lora.dropout, c.lora.target_modules) == (16, 16, 0.05, "all-linear")
    assert (c.train.optimizer, c.train.learning_rate, c.train.lr_scheduler, c.train.warmup_ratio) == ("adamw_8bit", 1e-4, "linear", 0.1)
    assert (c.train.global_batch_size, c.data.max_length, c.train.max_steps, c.train.save_steps) == (60, 512, 1000, 250)
    assert (c.data.template, c.data.train_on, c.data.packing, c.data.overlong) == ("seed", "all", False, "truncate")


def test_shipped_phi3_config_differs_from_the_seed_in_data_and_speed_settings_only():
    def flat(path):
        return {f"{section}.{key}": value for section, fields in cfg.to_dict(cfg.load_config(path)).items()
                for key, value in fields.items()}

    shipped, seed = flat(ROOT / "configs/jobs/phi3-xlam-qlora.yaml"), flat(ROOT / "configs/jobs/phi3-xlam-seed-exact.yaml")
    differing = {key: (shipped[key], seed[key]) for key in shipped if shipped[key] != seed[key]}
    assert differing == {"data.train_on": ("completion", "all"), "data.max_length": (1280, 512),
                         "data.packing": (True, False), "output.name": ("phi3-xlam-qlora", "phi3-xlam-seed-exact"),
                         "train.tune": ("auto", "manual")}  # tune changes how fast a step runs, not its math


def test_every_field_has_a_one_line_doc():
    for section in dataclasses.fields(cfg.JobConfig):
        section_class = type(getattr(cfg.JobConfig(), section.name))
        docs = cfg.field_docs(section_class)
        for field in dataclasses.fields(section_class):
            assert docs.get(field.name, "").strip(), f"{section.name}.{field.name} has no doc"
            assert "\n" not in docs[field.name]


def test_overrides_are_typed_and_nested():
    c = cfg.load_config(ROOT / "configs/jobs/tiny-cpu.yaml", ["train.max_steps=7", "lora.target_modules=[qkv_proj, o_proj]", "data.packing=false"])
    assert c.train.max_steps == 7 and c.lora.target_modules == ["qkv_proj", "o_proj"] and c.data.packing is False
    assert cfg.load_config(None, ["train.learning_rate=5e-3"]).train.learning_rate == 0.005  # YAML 1.1 reads it as a string


@pytest.mark.parametrize("override, message", [
    ("train.max_stepz=3", "unknown key 'train.max_stepz'"),
    ("nosuch.x=1", "unknown key 'nosuch'"),
    ("data.train_on=everything", "'data.train_on' = 'everything' is invalid"),
    ("train.max_steps=ten", "'train.max_steps' = 'ten' is invalid: expected int"),
    ("train.max_steps=0", "'train.max_steps' must be at least 1"),
    ("data.heldout_fraction=1.5", "'data.heldout_fraction' must be in [0, 1)"),
    ("lora.enabled=false", "'lora.enabled' is false (full fine-tuning) but quant.load_in_4bit is true"),
    ("train", "must look like section.key=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(cfg.ConfigError, match=None) as info:
        cfg.load_config(ROOT / "configs/jobs/phi3-xlam-qlora.yaml", [override])
    assert message in str(info.value)
    assert "phi3-xlam-qlora.yaml" in str(info.value) or "command line" in str(info.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(cfg.ConfigError, match="no such file"):
        cfg.load_config(tmp_path / "nope.yaml")


def test_resolved_config_round_trips(tmp_path):
    c = cfg.load_config(ROOT / "configs/jobs/tiny-cpu.yaml", [f"output.root={tmp_path}", "train.seed=7"])
    path = cfg.save_resolved(c)
    assert path == tmp_path / "tiny-cpu" / "config.yaml"
    saved = yaml.safe_load(path.read_text())
    assert saved["train"]["seed"] == 7 and set(saved) == {f.name for f in dataclasses.fields(cfg.JobConfig)}
    assert cfg.load_config(path) == c
