"""Loading a tokenizer with an error that names the folder: transformers, given a model folder without
tokenizer files, answers with a hint about sentencepiece that names neither the folder nor the cause."""

from __future__ import annotations

from pathlib import Path

from fcdist.errors import InputError

# Any one of these lets AutoTokenizer load a folder (fast tokenizer, sentencepiece model, or its config)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


def load_tokenizer_from(source: str | Path, revision: str | None = None, trust_remote_code: bool = False):
    """``AutoTokenizer.from_pretrained(source)``; a local folder without a loadable tokenizer is an InputError."""
    from transformers import AutoTokenizer

    folder = Path(source)
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise InputError(f"{folder}: no tokenizer in this model folder (none of {', '.join(TOKENIZER_FILES)}); "
                         "copy the base model's tokenizer files there")
    try:
        return AutoTokenizer.from_pretrained(str(source), revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        if not folder.is_dir():
            raise  # a hub id: transformers' message names the repository
        raise InputError(f"{folder}: cannot load its tokenizer: {str(e).splitlines()[0]}") from None
