"""What every data source returns."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mixmerge.core.records import Record


@dataclass
class SourceOutput:
    records: dict[str, list[Record]]  # split -> records
    report: dict[str, Any]  # what was read, kept and skipped, and why
    corpus: list[dict] = field(default_factory=list)  # pretraining text, if the source has any


def kept_per_language(splits: dict[str, list[Record]], languages: list[str]) -> dict:
    """Records per language and split, for a source's report."""
    kept = Counter((record.language, split) for split, rows in splits.items() for record in rows)
    return {code: {split: kept[code, split] for split in splits} for code in languages}
