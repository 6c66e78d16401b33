"""A model's responses to the eval prompts, reused while nothing they depend on changes.

Each row says what it came from: the model's content digest, the backend and its settings (the
fingerprint), the prompt's id and text. A rerun generates only the prompts no row answers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from stages.core.config import Generation
from stages.core.records import Record
from stages.generation import backend

# Files a model folder carries that do not change what it generates.
NOT_GENERATIVE = {"merge.yaml", "mergekit.yaml", "diagnostics.json", "README.md"}


def model_digest(model_dir: Path) -> str:
    """SHA-256 over the folder's files (weights, config, tokenizer, chat template)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        if file.name in NOT_GENERATIVE:
            continue
        digest.update(str(file.relative_to(model_dir)).encode() + b"\0")
        with file.open("rb") as stream:
            while block := stream.read(1 << 24):
                digest.update(block)
    return digest.hexdigest()


def fingerprint(model_dir: Path, settings: dict) -> str:
    payload = json.dumps([model_digest(model_dir), settings], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def generate(
    model: str,
    model_dir: Path,
    records: Sequence[Record],
    settings: Generation,
    previous: Sequence[dict] = (),
    trust_remote_code: bool = False,
) -> tuple[list[dict], int]:
    """One row per record, in order, and how many were generated now (the rest reused)."""
    described = settings.model_dump()
    stamp = fingerprint(model_dir, described)
    known = {
        (row["id"], row["prompt_sha"]): row["text"]
        for row in previous
        if row.get("fingerprint") == stamp
    }
    keys = [(r.id, _prompt_hash(r.prompt)) for r in records]
    missing = [i for i, key in enumerate(keys) if key not in known]
    if missing:
        texts = backend(settings.backend)(
            model_dir, [records[i].prompt for i in missing], settings, trust_remote_code
        )
        known |= {keys[i]: text for i, text in zip(missing, texts, strict=True)}
    rows = [
        {
            "model": model,
            "id": r.id,
            "language": r.language,
            "objective": r.objective,
            "prompt_sha": key[1],
            "settings": described,
            "fingerprint": stamp,
            "text": known[key],
        }
        for r, key in zip(records, keys, strict=True)
    ]
    return rows, len(missing)
