"""A run folder's saved config never turns on trust_remote_code; only the user's command line does."""

from __future__ import annotations

import pytest

from fcdist import gather, infer
from fcdist.config import load_config, load_run_config, save_resolved


@pytest.fixture
def received_run(tmp_path):
    config = load_config(None, ["model.trust_remote_code=true"])
    save_resolved(config, tmp_path / "config.yaml")
    assert "trust_remote_code: true" in (tmp_path / "config.yaml").read_text()
    return tmp_path


def test_saved_config_does_not_turn_on_remote_code(received_run):
    assert load_run_config(received_run).model.trust_remote_code is False
    assert load_run_config(received_run, trust_remote_code=True).model.trust_remote_code is True


def test_gather_and_infer_take_it_from_their_own_flag(received_run, monkeypatch, capsys):
    loaded = []
    real = gather.load_run_config
    monkeypatch.setattr(gather, "load_run_config", lambda *a, **k: loaded.append(real(*a, **k)) or loaded[-1])
    for flag, expected in (([], False), (["--trust-remote-code"], True)):
        assert gather.main(["--run", str(received_run), *flag]) == 1  # the config loads; the run has no checkpoint
        assert "no complete checkpoint yet" in capsys.readouterr().err
        assert loaded.pop().model.trust_remote_code is expected
        args = infer.build_parser().parse_args(["--run", str(received_run), "--out", "p.jsonl", *flag])
        assert infer.job_config(args).model.trust_remote_code is expected
