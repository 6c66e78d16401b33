"""A judge's answers kept on disk, so that a rerun sends nothing and an interrupted run resumes.

One JSON line per answer, appended and flushed as it arrives; keys hash the judge model, the
prompt template, the item and the order. A line cut short by a kill is ignored when read back.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import threading
from pathlib import Path


def cache_key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


class AnswerCache:
    def __init__(self, path: Path):
        self.path = path
        self.answers: dict[str, dict] = {}
        self._lock = threading.Lock()
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.answers[entry["key"]] = entry

    def get(self, key: str) -> dict | None:
        return self.answers.get(key)

    def put(self, key: str, answer: str, usage: dict) -> None:
        entry = {"key": key, "answer": answer, "usage": usage}
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.answers[key] = entry
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as file:
                # Stages running in parallel (queued experiments) may share the cache.
                fcntl.flock(file, fcntl.LOCK_EX)
                file.write(line)
