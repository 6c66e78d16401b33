"""Answers kept on disk (a judge's verdicts, a teacher's answers, translations), so that a rerun
asks nothing and an interrupted run resumes.

One JSON line per answer, appended and flushed as it arrives; keys hash the model, the prompt
template, the settings that change the answer and the item. A line cut short by a kill is
ignored when read back, and the next answer starts on a line of its own.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path


def cache_key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


def cache_file(folder: str | Path, model: str, prefix: str = "") -> Path:
    """The cache of one model's answers in `folder`, named after the model."""
    slug = "".join(c if c.isalnum() or c in "-._" else "_" for c in str(model))
    return Path(folder) / f"{prefix}{slug}.jsonl"


class AnswerCache:
    def __init__(self, path: Path):
        self.path = path
        self.answers: dict[str, dict] = {}
        self._lock = threading.Lock()
        if path.is_file():
            # Split on \n alone: an answer holds U+2028 or U+0085 raw (they are written as
            # they are), which str.splitlines would take for line ends.
            for line in path.read_bytes().split(b"\n"):
                try:
                    entry = json.loads(line.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    continue  # a line cut short by a kill, maybe inside a character
                self.answers[entry["key"]] = entry

    def get(self, key: str) -> dict | None:
        return self.answers.get(key)

    def put(self, key: str, answer: str, usage: dict) -> None:
        entry = {"key": key, "answer": answer, "usage": usage}
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            self.answers[key] = entry
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab+") as file:
                # Stages running in parallel (queued experiments) may share the cache.
                fcntl.flock(file, fcntl.LOCK_EX)
                end = file.seek(0, os.SEEK_END)
                if end:
                    file.seek(end - 1)
                    if file.read(1) != b"\n":
                        line = b"\n" + line  # the last line was cut short by a kill
                file.write(line)

    def fill(
        self,
        keys: Sequence[str],
        compute: Callable[[list[int]], Sequence[str | None]],
        chunk: int,
    ) -> tuple[list[str | None], int]:
        """The answers for `keys` and how many were cached: the others made by `compute`
        (given their positions) `chunk` at a time, each chunk kept as it comes back, so that
        a kill loses at most one chunk. An empty answer is returned but not kept."""
        answers: list[str | None] = [None] * len(keys)
        missing = []
        for i, key in enumerate(keys):
            hit = self.get(key)
            if hit is None:
                missing.append(i)
            else:
                answers[i] = hit["answer"]
        for start in range(0, len(missing), chunk):
            part = missing[start : start + chunk]
            for i, answer in zip(part, compute(part), strict=True):
                answers[i] = answer or None
                if answer:
                    self.put(keys[i], answer, {})
        return answers, len(keys) - len(missing)
