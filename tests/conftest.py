"""Session fixtures: the tiny model and synthetic data are built once, the way a user builds them."""

from __future__ import annotations

import json
import os
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


# The real material (67 genuine xlam rows, the Phi-3-mini tokenizer) lies beside the checkout in
# ../shared/real/ on the project's machines and in CI, never inside the repository. A user's clone has
# none: tests that need it skip there, unless FCDIST_REQUIRE_REAL=1 (CI sets it), when they fail instead.
REAL_DIR = Path(os.environ.get("FCDIST_REAL_DIR", ROOT.parent / "shared" / "real"))


def _require_real(path: Path) -> Path:
    if path.exists():
        return path
    message = f"real material not found at {path} (set FCDIST_REAL_DIR to the folder with xlam-sample.jsonl and phi3-tokenizer/)"
    if os.environ.get("FCDIST_REQUIRE_REAL") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def real_rows_file() -> Path:
    """67 genuine xlam-function-calling-60k rows (read-only)."""
    return _require_real(REAL_DIR / "xlam-sample.jsonl")


@pytest.fixture(scope="session")
def phi3_tokenizer_dir(tmp_path_factory) -> Path:
    """A writable copy of the real Phi-3-mini tokenizer files, loadable with AutoTokenizer.from_pretrained."""
    import shutil

    source = _require_real(REAL_DIR / "phi3-tokenizer")
    copy = tmp_path_factory.mktemp("phi3") / "tokenizer"
    shutil.copytree(source, copy)
    return copy


@pytest.fixture(scope="session")
def cpu_4bit() -> None:
    """bitsandbytes' NF4 path on this CPU. Tests that need it skip where it is missing, unless
    FCDIST_REQUIRE_4BIT=1 (CI sets it), when they fail: CI must not go green with QLoRA untested."""
    try:
        import bitsandbytes as bnb
        import torch

        bnb.nn.Linear4bit(64, 64, quant_type="nf4").to("cpu")(torch.ones(1, 64))
    except Exception as e:  # noqa: BLE001 - the reason is the message
        message = f"bitsandbytes has no working CPU 4-bit path here: {type(e).__name__}: {e}"
        if os.environ.get("FCDIST_REQUIRE_4BIT") == "1":
            pytest.fail(message)
        pytest.skip(message)
