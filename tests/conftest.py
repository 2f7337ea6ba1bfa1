"""Session fixtures: the tiny model and synthetic data are built once, the way a user builds them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fcdist.config import load_config

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "configs" / "jobs" / "tiny-cpu.yaml"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from fcdist.model.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def synth_data_file(tmp_path_factory) -> Path:
    """600 synthetic xlam rows (seed 0) as jsonl."""
    from fcdist.data.synth import generate_rows

    path = tmp_path_factory.mktemp("synth") / "synth.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in generate_rows(600, seed=0)))
    return path


@pytest.fixture
def tiny_config_factory(tiny_model_dir, synth_data_file, tmp_path):
    """``make(*overrides)`` -> JobConfig of configs/jobs/tiny-cpu.yaml on the session's tiny model and data,
    with runs under this test's tmp_path; later overrides win."""

    def make(*overrides: str, data: Path | None = None):
        base = [f"model.name_or_path={tiny_model_dir}", f"data.source={data or synth_data_file}", f"output.root={tmp_path / 'runs'}"]
        return load_config(TINY_CONFIG, base + list(overrides))

    return make
