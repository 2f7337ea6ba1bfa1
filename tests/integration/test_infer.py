"""`fcdist infer` end to end on the tiny model: resume after a kill, adapters, --run shards + merge, scoring."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from fcdist import infer as infer_module
from fcdist import score
from fcdist.config import load_config, save_resolved
from fcdist.data.xlam import parse_row
from fcdist.infer import infer, main, row_prompts
from fcdist.infer.generate import generate_calls
from fcdist.infer.predictions import shard_path
from fcdist.model.load import load_inference_tokenizer

ROOT = Path(__file__).resolve().parents[2]
MAX_NEW_TOKENS = 12
NUM_ROWS = 12


@pytest.fixture(scope="module")
def config(tiny_model_dir, tmp_path_factory):
    overrides = [f"model.name_or_path={tiny_model_dir}", f"output.root={tmp_path_factory.mktemp('runs')}",
                 f"infer.max_new_tokens={MAX_NEW_TOKENS}", "infer.batch_size=4"]
    return load_config(ROOT / "configs" / "jobs" / "tiny-cpu.yaml", overrides)


@pytest.fixture(scope="module")
def config_file(config, tmp_path_factory) -> Path:
    return save_resolved(config, tmp_path_factory.mktemp("config") / "config.yaml")


@pytest.fixture(scope="module")
def rows_file(synth_data_file, tmp_path_factory) -> Path:
    """The NUM_ROWS synthetic rows with the shortest prompts, in their file order (xlam format)."""
    lines = synth_data_file.read_text().splitlines(keepends=True)
    shortest = sorted(range(len(lines)), key=lambda i: len(lines[i]))[:NUM_ROWS]
    path = tmp_path_factory.mktemp("data") / "heldout.jsonl"
    path.write_text("".join(lines[i] for i in sorted(shortest)))
    return path


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def completions(path: Path) -> dict:
    return {r["id"]: r["completion"] for r in read_records(path)}


@pytest.fixture(scope="module")
def base_predictions(tiny_model_dir, rows_file, config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("base") / "pred.jsonl"
    summary = infer(tiny_model_dir, rows_file, out, config, progress=False)
    assert summary.generated == NUM_ROWS and summary.already_done == 0
    return out


@pytest.fixture(scope="module")
def adapter(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter with random (non-zero) B saved as peft saves it, and the same adapter in memory."""
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = LoraConfig(r=4, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(base, lora).eval()
    assert any(p.abs().sum() > 0 for name, p in model.named_parameters() if "lora_B" in name)
    path = tmp_path_factory.mktemp("adapter") / "adapter"
    model.save_pretrained(path)
    return path, model


def test_predictions_have_the_documented_fields(base_predictions):
    records = read_records(base_predictions)
    assert len(records) == NUM_ROWS
    assert all(set(r) == {"id", "completion", "new_tokens", "latency_s"} for r in records)
    assert all(0 < r["new_tokens"] <= MAX_NEW_TOKENS and r["latency_s"] > 0 for r in records)


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_batched_infer_with_each_cache_writes_what_one_prompt_at_a_time_does(tiny_model_dir, rows_file, config,
                                                                             base_predictions, tmp_path, cache):
    one_at_a_time = tmp_path / "single.jsonl"
    infer(tiny_model_dir, rows_file, one_at_a_time, replace(config, infer=replace(config.infer, batch_size=1)),
          progress=False)
    batched = tmp_path / f"{cache}.jsonl"
    infer(tiny_model_dir, rows_file, batched, replace(config, infer=replace(config.infer, batch_size=5, cache=cache)),
          progress=False)
    fields = lambda path: {r["id"]: (r["completion"], r["new_tokens"]) for r in read_records(path)}  # noqa: E731
    assert fields(batched) == fields(one_at_a_time) == fields(base_predictions)


def test_compile_on_a_cpu_fails_before_writing_and_names_the_setting(tiny_model_dir, rows_file, config_file,
                                                                     tmp_path, capsys):
    out = tmp_path / "pred.jsonl"
    args = ["--model", str(tiny_model_dir), "--config", str(config_file), "--data", str(rows_file), "--out", str(out)]
    assert main([*args, "infer.compile=always", "--no-progress"]) == 1
    last_line = capsys.readouterr().err.splitlines()[-1]  # after transformers' progress bar of loading weights
    assert last_line.startswith("fcdist infer: error: infer.compile=always needs infer.cache=static")
    assert not out.exists()


def test_a_killed_run_resumes_without_losing_or_repeating_rows(tiny_model_dir, rows_file, config, base_predictions,
                                                               tmp_path, monkeypatch):
    kept = 5
    lines = base_predictions.read_text().splitlines(keepends=True)
    out = tmp_path / "pred.jsonl"
    out.write_text("".join(lines[:kept]) + lines[kept][: len(lines[kept]) // 2])  # killed mid-write

    summary = infer(tiny_model_dir, rows_file, out, config, progress=False)
    assert (summary.already_done, summary.generated) == (kept, NUM_ROWS - kept)
    assert out.read_text().splitlines(keepends=True)[:kept] == lines[:kept]
    records = read_records(out)
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in read_records(base_predictions))
    assert completions(out) == completions(base_predictions)

    def no_model(*args, **kwargs):
        raise AssertionError("a finished file needs no model")

    monkeypatch.setattr(infer_module, "load_model_for_inference", no_model)
    assert infer(tiny_model_dir, rows_file, out, config, progress=False).generated == 0


def test_adapter_folder_generates_what_the_adapter_in_memory_does(adapter, rows_file, config, base_predictions,
                                                                  tiny_model_dir, tmp_path):
    path, in_memory = adapter
    out = tmp_path / "pred.jsonl"
    infer(path, rows_file, out, config, progress=False)

    tokenizer = load_inference_tokenizer(tiny_model_dir, config)
    rows = [parse_row(json.loads(line), "rows") for line in rows_file.read_text().splitlines()]
    batches = generate_calls(in_memory, tokenizer, row_prompts(rows, config, tokenizer), MAX_NEW_TOKENS, 4)
    expected = {rows[g.index].id: g.completion for batch in batches for g in batch}
    assert completions(out) == expected
    assert completions(out) != completions(base_predictions), "the adapter must change the generations"


def test_run_folder_in_three_shards_merges_every_id_once(adapter, rows_file, config, config_file, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "tiny"
    (run_dir / "gathered").mkdir(parents=True)
    (run_dir / "gathered" / "adapter").symlink_to(adapter[0])
    save_resolved(config, run_dir / "config.yaml")
    out = tmp_path / "pred.jsonl"
    common = ["--run", str(run_dir), "--data", str(rows_file), "--out", str(out), "--num-shards", "3", "--no-progress"]
    for shard in range(3):
        assert not out.exists(), "merged only once every shard is complete"
        assert main([*common, "--shard", str(shard)]) == 0
    assert "merged into" in capsys.readouterr().out
    gold_ids = [json.loads(line)["id"] for line in rows_file.read_text().splitlines()]
    assert [r["id"] for r in read_records(out)] == gold_ids

    merge = ["--merge-shards", "--num-shards", "3", "--data", str(rows_file), "--out", str(out)]
    assert main(merge) == 0
    shard_file = shard_path(out, 1, 3)
    dropped = json.loads(shard_file.read_text().splitlines()[0])["id"]
    shard_file.write_text("".join(shard_file.read_text().splitlines(keepends=True)[1:]))
    assert main(merge) == 1
    assert f"missing: {dropped}" in capsys.readouterr().err


def test_predictions_are_scored_for_every_row(base_predictions, rows_file, tmp_path):
    report_path = tmp_path / "r.json"
    args = ["--gold", str(rows_file), "--predictions", str(base_predictions), "--out", str(report_path)]
    assert score.main(args) == 0
    report = json.loads(report_path.read_text())
    assert report["n"] == NUM_ROWS and report["missing_predictions"] == 0


def test_prompt_mode_prints_the_generation(tiny_model_dir, config, config_file, capsys):
    prompt = "<user>Weather in Paris?</user>\\n\\n<tools>{'name': 'weather'}</tools>"
    assert main(["--model", str(tiny_model_dir), "--config", str(config_file), "--prompt", prompt]) == 0
    tokenizer = load_inference_tokenizer(tiny_model_dir, config)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    text = prompt.replace("\\n", "\n") + "\n\n<calls>"
    (expected,) = next(generate_calls(model, tokenizer, [text], MAX_NEW_TOKENS, 1))
    assert capsys.readouterr().out == expected.completion + "\n"


def test_vllm_backend_without_vllm_fails_before_writing(tiny_model_dir, rows_file, config, tmp_path):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    out = tmp_path / "pred.jsonl"
    vllm_config = load_config(None, [f"model.name_or_path={tiny_model_dir}", "infer.backend=vllm"])
    with pytest.raises(RuntimeError, match="vllm is not installed"):
        infer(tiny_model_dir, rows_file, out, vllm_config, progress=False)
    assert not out.exists()


def test_run_folder_takes_overrides_but_not_remote_code(adapter, rows_file, config, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "tiny"
    (run_dir / "gathered").mkdir(parents=True)
    (run_dir / "gathered" / "adapter").symlink_to(adapter[0])
    save_resolved(config, run_dir / "config.yaml")
    out = tmp_path / "pred.jsonl"
    common = ["--run", str(run_dir), "--data", str(rows_file), "--out", str(out), "--no-progress"]
    assert main([*common, "infer.max_new_tokens=3", "infer.batch_size=5"]) == 0
    assert max(r["new_tokens"] for r in read_records(out)) == 3 < MAX_NEW_TOKENS
    out.unlink()
    assert main([*common, "model.trust_remote_code=true"]) == 1
    assert "'model.trust_remote_code' cannot be turned on for a run folder" in capsys.readouterr().err
    assert not out.exists()
