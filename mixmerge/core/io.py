"""Reading and writing stage outputs. Every output appears complete or not at all."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mixmerge.core.errors import StageError


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `target` to write a file or folder into; on success it
    replaces `target`, on failure it is removed and `target` is left as it was. A killed stage
    never leaves a half-written output that looks finished."""
    target = Path(target)
    temporary = staging(target)
    try:
        yield temporary
        publish(temporary, target)
    finally:
        remove(temporary)


def staging(target: Path) -> Path:
    """The empty temporary sibling an output is written into before `publish`. Its name is the
    same in every process of a distributed run; what a killed run left there is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.tmp*"):
        remove(stale)
    return target.with_name(f".{target.name}.tmp")


def publish(temporary: Path, target: Path) -> None:
    """Move a finished file or folder into place, replacing what was there."""
    if temporary.is_dir() and target.exists():
        # A folder cannot replace a folder in one step: move the old one aside first.
        retired = target.with_name(f".{target.name}.tmp-old")
        os.replace(target, retired)
        os.replace(temporary, target)
        remove(retired)
    else:
        os.replace(temporary, target)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON Lines file, one per line (blank lines skipped). A line that is
    not one, as a file cut short by a full disk or a killed writer ends, is a StageError that
    names the file and the line, not a decoder's traceback."""
    rows = []
    with Path(path).open("rb") as file:  # lines split on \n alone, as JSON Lines are written
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise StageError(
                    f"{path} line {number}: not a JSON line ({error}); the file looks cut "
                    "short: remove it and rerun the stage that writes it"
                ) from None
            if not isinstance(row, dict):
                raise StageError(
                    f"{path} line {number}: a JSON {type(row).__name__}, not an object"
                )
            rows.append(row)
    return rows


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
