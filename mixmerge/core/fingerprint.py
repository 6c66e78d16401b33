"""Fingerprints: what a cached result was made from, so that it is reused only for the same
inputs. Generations are kept per model fingerprint and training checkpoints per run fingerprint,
both from `fingerprint`.

Every byte of every file is hashed: a sample of each shard (the start, the middle, the end) can
miss a fine-tune that moved a few tensors, and reusing a stale result is the costly mistake.
SHA-256 reads about a gigabyte a second, so an 8B model's 16 GB cost seconds per stage.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

# Files a model folder carries that do not change what it computes.
NOT_COMPUTED = frozenset({"merge.yaml", "mergekit.yaml", "diagnostics.json", "README.md"})


def content_digest(path: Path) -> str:
    """SHA-256 over a file, or over a folder's files (each by its relative path and bytes),
    skipping those in NOT_COMPUTED."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if file.name in NOT_COMPUTED:
            continue
        name = file.relative_to(path) if path.is_dir() else file.name
        digest.update(str(name).encode() + b"\0")
        with file.open("rb") as stream:
            while block := stream.read(1 << 24):
                digest.update(block)
    return digest.hexdigest()


def data_digest(value) -> str:
    """A digest of JSON-able data, such as the rows a run trains on."""
    return hashlib.sha256(
        json.dumps(value, ensure_ascii=False, sort_keys=True).encode()
    ).hexdigest()


def fingerprint(settings: dict, *paths: Path) -> str:
    """A digest of `settings` (JSON-able) and of the content of files or folders."""
    payload = json.dumps([*map(content_digest, paths), settings], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
