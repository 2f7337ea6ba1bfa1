"""fcdist tiny-model: the folder loads like a hub checkpoint, runs, round-trips text and is built safely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from fcdist.data.render import render_text
from fcdist.data.synth import generate_rows
from fcdist.model.tiny import INFO_FILE, build_tiny_model, main


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


def rendered_row(seed: int) -> str:
    row = generate_rows(1, seed=seed)[0]
    return render_text(row["query"], json.loads(row["tools"]), json.loads(row["answers"]))


def test_loads_as_phi3_with_safetensors(tiny_model_dir: Path, model):
    assert type(model).__name__ == "Phi3ForCausalLM"
    assert (tiny_model_dir / "model.safetensors").is_file()
    assert model.config.max_position_embeddings >= 2048


def test_special_tokens_agree_between_tokenizer_and_model(tokenizer, model):
    specials = (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token)
    assert specials == ("<s>", "</s>", "<pad>", "<unk>")
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert model.config.bos_token_id == tokenizer.bos_token_id
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id


def test_forward_pass_gives_logits_and_a_finite_loss(tokenizer, model):
    batch = tokenizer([rendered_row(1), rendered_row(2)], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**batch, labels=batch["input_ids"])
    assert out.logits.shape == (*batch["input_ids"].shape, model.config.vocab_size)
    assert torch.isfinite(out.loss)


def test_tokenizer_round_trips_a_rendered_row(tokenizer):
    text = rendered_row(5) + tokenizer.eos_token
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids) == text


def test_info_file_says_how_it_was_made(tiny_model_dir: Path, tokenizer):
    info = json.loads((tiny_model_dir / INFO_FILE).read_text())
    assert info["seed"] == 0 and info["tokenizer_rows"] == 2000
    assert info["tokenizer_vocab"] == len(tokenizer)
    assert 2.8 <= info["chars_per_token_heldout"] <= 3.8  # a Llama-style tokenizer gives ~3.3 on this data


def test_same_seed_gives_identical_files(tiny_model_dir: Path, tmp_path: Path):
    again = build_tiny_model(tmp_path / "again", seed=0)
    for name in ("model.safetensors", "tokenizer.json", "config.json", INFO_FILE):
        assert (again / name).read_bytes() == (tiny_model_dir / name).read_bytes()


def test_refuses_a_non_empty_dir_unless_forced(tmp_path: Path, capsys):
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError):
        build_tiny_model(out, rows=200)
    assert main(["--out", str(out), "--rows", "200"]) == 1 and "--force" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"

    assert main(["--out", str(out), "--rows", "200", "--force"]) == 0
    assert (out / "config.json").is_file() and not (out / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp or old folders left behind


def test_help_has_a_usage_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "usage: fcdist tiny-model" in capsys.readouterr().out


def test_numbers_are_single_digits_so_an_id_is_spelled_alike_in_query_and_call(tokenizer):
    # Llama's and Phi-3's tokenizers do the same: a zip code copied into a call is the same five tokens
    for text in ("zip 90210", "{'zip': '90210'}", "'90210'"):
        pieces = [tokenizer.decode([i]) for i in tokenizer(text)["input_ids"]]
        assert any(pieces[i:i + 5] == list("90210") for i in range(len(pieces))), pieces


@pytest.mark.parametrize("size, low, high", [("tiny", 0.8e6, 2e6), ("small", 3e6, 6e6), ("100m", 90e6, 110e6)])
def test_model_sizes(tokenizer, size, low, high):
    from fcdist.model.tiny import build_model

    with torch.device("meta"):  # counts parameters without allocating 400 MB for the largest
        model = build_model(tokenizer, seed=0, size=size)
    assert low <= sum(p.numel() for p in model.parameters()) <= high
    assert model.config.hidden_size // model.config.num_attention_heads in (32, 64)


def test_size_is_recorded_and_an_unknown_size_is_refused(tiny_model_dir: Path, tmp_path: Path):
    assert json.loads((tiny_model_dir / INFO_FILE).read_text())["size"] == "tiny"
    with pytest.raises(ValueError, match="model size 'huge' is unknown"):
        build_tiny_model(tmp_path / "m", size="huge")
    assert not (tmp_path / "m").exists()


def test_the_phi3_mini_size_has_phi3_minis_shape_in_bf16():
    """The speed benchmark's stand-in: Phi-3-mini-128k's 3.82B parameters and 32064-row vocabulary."""
    from fcdist.model.tiny import build_model, train_tokenizer

    tokenizer = train_tokenizer(["a small text to train on"] * 4, vocab_size=300)
    with torch.device("meta"):  # the shape without 7.6 GB of weights
        model = build_model(tokenizer, seed=0, size="phi3-mini")
    assert model.config.vocab_size == 32064 and model.config.num_hidden_layers == 32
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(3.82e9, rel=0.01)
    assert model.dtype == torch.bfloat16
