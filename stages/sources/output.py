"""What every data source returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stages.core.records import Record


@dataclass
class SourceOutput:
    records: dict[str, list[Record]]  # split -> records
    report: dict[str, Any]  # what was read, kept and skipped, and why
    corpus: list[dict] = field(default_factory=list)  # pretraining text, if the source has any
