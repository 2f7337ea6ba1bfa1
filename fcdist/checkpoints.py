"""What a complete checkpoint holds, and which step folder ``latest`` may name: one rule for train and gather.

A step folder is published with ``fcdist_files.json``: every file in it (DeepSpeed's ``global_step*/`` shards
too) with its size and sha256. Resume and gather refuse a folder that lacks, changed or gained a file since,
naming it: a half-copied or damaged checkpoint would otherwise resume with a fresh optimizer or schedule and
diverge without a word. The hashes catch damage and mix-ups, not a forger (who can rewrite the list too):
gather and infer therefore never unpickle, and resume, which loads the Trainer's and DeepSpeed's pickles,
trusts the run folder as its own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from fcdist.atomic import write_text_atomic
from fcdist.errors import InputError
from fcdist.preprocess.fingerprint import sha256_file

FILE_MANIFEST = "fcdist_files.json"
STEP_FOLDER = re.compile(r"step-\d+")
LATEST = "latest"  # checkpoints/latest: the name of the newest complete step folder


class CheckpointError(InputError):
    """A checkpoint or ``latest`` pointer that cannot be used; the message names the file."""


class EmptyAdapterError(RuntimeError):
    """The adapter has no trained weights: the classic ZeRO-3 save bug, or a run that never stepped."""


def step_number(folder: Path) -> int:
    return int(folder.name.removeprefix("step-"))


def listed_files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != FILE_MANIFEST}


def write_file_manifest(folder: Path) -> Path:
    """Record every file of ``folder`` (relative path -> size, sha256) in ``folder/fcdist_files.json``."""
    files = {name: {"size": path.stat().st_size, "sha256": sha256_file(path)} for name, path in listed_files(folder).items()}
    write_text_atomic(folder / FILE_MANIFEST, json.dumps({"files": files}, indent=1) + "\n")
    return folder / FILE_MANIFEST


def verify_checkpoint(folder: Path) -> None:
    """Raise CheckpointError naming the first file missing, changed or added since the manifest was written."""
    manifest = folder / FILE_MANIFEST
    if not manifest.is_file():
        raise CheckpointError(f"{manifest}: missing, so what the checkpoint held cannot be checked "
                              "(not published by fcdist, or by a version before it recorded its files)")
    try:
        expected = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{manifest}: unreadable ({e})") from e
    present = listed_files(folder)
    for name, record in expected.items():
        path = present.get(name)
        if path is None:
            raise CheckpointError(f"{folder / name}: missing from the checkpoint")
        if path.stat().st_size != record["size"] or sha256_file(path) != record["sha256"]:
            raise CheckpointError(f"{folder / name}: changed since the run wrote it")
    extra = sorted(set(present) - set(expected))
    if extra:
        raise CheckpointError(f"{folder / extra[0]}: not among the files the run wrote ({FILE_MANIFEST})")


def step_folder(checkpoints: Path, name: str, where: str) -> Path:
    """``checkpoints/<name>`` when ``name`` is a step-<N> folder really inside this run's checkpoints."""
    if not STEP_FOLDER.fullmatch(name):
        raise CheckpointError(f"{where}: {name!r} must name a step-<N> folder of this run")
    folder = checkpoints / name
    if folder.is_symlink():
        raise CheckpointError(f"{where}: {folder} is a link; a checkpoint must be a folder of this run")
    if not folder.is_dir():
        found = ", ".join(p.name for p in step_folders(checkpoints)) or "none"
        raise CheckpointError(f"{where} names {name}, which does not exist (found: {found})")
    return folder


def step_folders(checkpoints: Path) -> list[Path]:
    """This run's step-<N> folders, oldest first."""
    return sorted((p for p in checkpoints.glob("step-*") if STEP_FOLDER.fullmatch(p.name) and p.is_dir()), key=step_number)


def read_latest_pointer(checkpoints: Path) -> Path | None:
    """The folder ``checkpoints/latest`` names, or None when there is no pointer (nothing saved yet)."""
    pointer = checkpoints / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    if not name:
        raise CheckpointError(f"{pointer} is empty; write the newest complete step-<N> folder's name into it, "
                              "or remove it to start over")
    return step_folder(checkpoints, name, str(pointer))


def resumable_checkpoint(checkpoints: Path, fallback: bool) -> tuple[Path | None, list[str]]:
    """The checkpoint to resume from and why newer ones were skipped. The latest must pass its file check,
    unless ``fallback``, which takes the newest one that does."""
    latest = read_latest_pointer(checkpoints)
    if latest is None:
        return None, []
    skipped = []
    candidates = [latest] + [p for p in reversed(step_folders(checkpoints)) if step_number(p) < step_number(latest)]
    for folder in candidates if fallback else [latest]:
        try:
            verify_checkpoint(folder)
            return folder, skipped
        except CheckpointError as e:
            skipped.append(str(e))
    if not fallback:
        raise CheckpointError(f"{skipped[0]}; refusing to resume from an incomplete checkpoint "
                              "(set train.resume_fallback=true to resume from the newest complete one)")
    raise CheckpointError(f"no complete checkpoint in {checkpoints}: {'; '.join(skipped)}")


def check_adapter(adapter_dir: Path, expect_trained: bool = True, where: Path | None = None) -> int:
    """Refuse an adapter without trained weights (naming ``where``, by default the adapter file); returns its
    number of tensors. Written once for the trainer (every save) and gather (what it hands on).

    LoRA's B matrices start at zero, so all-zero B weights after a real update mean an untrained adapter;
    zero-sized tensors mean ZeRO-3 saved its partitions without gathering them.
    """
    from safetensors.torch import load_file

    adapter = adapter_dir / "adapter_model.safetensors"
    where = where or adapter
    weights = load_file(str(adapter))
    lora_b = {key: tensor for key, tensor in weights.items() if "lora_B" in key}
    if not lora_b:
        raise EmptyAdapterError(f"{where}: the adapter holds no lora_B weights ({len(weights)} tensors)")
    empty = [key for key, tensor in lora_b.items() if tensor.numel() == 0]
    if empty:
        raise EmptyAdapterError(f"{where}: {len(empty)} LoRA tensors are empty (e.g. {empty[0]}): ZeRO-3 saved its "
                                "partitions; set stage3_gather_16bit_weights_on_model_save: true in the DeepSpeed config")
    if expect_trained and all(tensor.count_nonzero() == 0 for tensor in lora_b.values()):
        raise EmptyAdapterError(f"{where}: every lora_B weight of the adapter is zero, so it is untrained (it starts "
                                "at zero); check train.learning_rate and that the loss has trained tokens")
    return len(weights)
