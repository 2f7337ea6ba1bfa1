"""The preprocessing fingerprint: everything that changes the packed tokens, hashed component by component.

Kept as named components (not one opaque hash) so a mismatch can name the setting that differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fcdist.config import JobConfig
from fcdist.data.render import chat_format

# What preprocessing writes, beyond the settings: bumped when the same settings give other shards (2: documents
# truncation leaves without loss are dropped, markers count loss tokens after truncation; 3: TRL's bfd packs, and it
# groups documents into rows differently), so old shards are redone.
PREPROCESS_FORMAT = 3


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def tokenizer_hash(tokenizer) -> str:
    """Hash of what decides token ids: the vocabulary/merges/normalizer, special tokens and chat template."""
    parts = {
        "backend": tokenizer.backend_tokenizer.to_str() if hasattr(tokenizer, "backend_tokenizer") else repr(tokenizer.get_vocab()),
        "special": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
        "chat_template": getattr(tokenizer, "chat_template", None),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def data_identity(config: JobConfig) -> str:
    """A local file is identified by its content; a hub dataset by id, revision and split."""
    source = Path(config.data.source)
    if source.is_file():
        return f"file:{sha256_file(source)}"
    return f"hub:{config.data.source}@{config.data.revision or 'default'}:{config.data.split}"


def fingerprint_components(config: JobConfig, tokenizer) -> dict:
    d = config.data
    components = {
        "data.source": data_identity(config),
        "data.on_bad_row": d.on_bad_row,
        "data.heldout_fraction": d.heldout_fraction,
        "data.template": d.template,
        "data.train_on": d.train_on,
        "data.max_length": d.max_length,
        "data.packing": d.packing,
        "data.overlong": d.overlong,
        "model.tokenizer": tokenizer_hash(tokenizer),
        "preprocess.format": PREPROCESS_FORMAT,
    }
    if d.template == "chat":  # packed data from before this key dropped the tools and ended turns with eos
        components["data.chat_format"] = chat_format(tokenizer).describe()
    return components


def fingerprint_hash(components: dict) -> str:
    return hashlib.sha256(json.dumps(components, sort_keys=True).encode()).hexdigest()[:16]


def differing_keys(expected: dict, found: dict) -> list[str]:
    return sorted(k for k in set(expected) | set(found) if expected.get(k) != found.get(k))
