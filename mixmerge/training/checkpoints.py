"""Resumable training: checkpoints that belong to exactly one set of inputs.

DVC keeps a run's checkpoint folder across runs (`persist: true`), so a killed run continues
where it stopped. The folder carries a fingerprint (`mixmerge.core.fingerprint`) of everything
the run learns from; when the
inputs change (new params, data or initial model) the old checkpoints are discarded rather than
resumed into a different run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

FINGERPRINT = "fingerprint.txt"


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
