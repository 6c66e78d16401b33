"""Resumable training: checkpoints that belong to exactly one set of inputs.

DVC keeps a run's checkpoint folder across runs (`persist: true`), so a killed run continues
where it stopped. The folder carries a fingerprint of everything the run learns from; when the
inputs change (new params, data or initial model) the old checkpoints are discarded rather than
resumed into a different run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

FINGERPRINT = "fingerprint.txt"
# Files above this size are fingerprinted by size and samples: hashing 16 GB of weights at every
# start would cost minutes, and two different models never share size and samples.
FULL_HASH_LIMIT = 64 * 2**20
SAMPLE = 2**20


def _file_digest(path: Path, digest) -> None:
    size = path.stat().st_size
    digest.update(f"{path.name}:{size}".encode())
    with path.open("rb") as file:
        if size <= FULL_HASH_LIMIT:
            digest.update(file.read())
            return
        for offset in (0, size // 2, size - SAMPLE):
            file.seek(offset)
            digest.update(file.read(SAMPLE))


def digest(value) -> str:
    """A digest of JSON-able data, such as the rows a run trains on."""
    return hashlib.sha256(
        json.dumps(value, ensure_ascii=False, sort_keys=True).encode()
    ).hexdigest()


def fingerprint(settings: dict, *paths: Path) -> str:
    """A digest of `settings` (JSON-able) and the content of files or folders."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            _file_digest(file, digest)
    return digest.hexdigest()


def claim(folder: Path, expected: str) -> None:
    """Keep `folder`'s checkpoints if they were made from the same inputs, else empty it and
    stamp it for this run. Only one process may call this."""
    stamp = folder / FINGERPRINT
    if stamp.is_file() and stamp.read_text().strip() == expected:
        return
    clear(folder)
    stamp.write_text(expected + "\n")


def newest(folder: Path) -> Path | None:
    """The newest complete checkpoint in `folder`, to resume from. A run killed while saving
    leaves an incomplete one, whose trainer state is missing or cut short: the older one (kept
    until the new one is complete) is taken instead."""
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    for checkpoint in reversed(found):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        return checkpoint
    return None


def clear(folder: Path) -> None:
    """Remove a folder's checkpoints, keeping the (empty) folder DVC expects."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
