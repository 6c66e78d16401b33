"""The one record type every data source produces and every stage reads."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import asdict, dataclass, fields
from typing import Literal

Objective = Literal["safety", "general", "benign"]
OBJECTIVES: tuple[Objective, ...] = ("safety", "general", "benign")
# dev: prompts held out of train and eval alike, on which searches score their candidates, so
# that no figure of the report is of prompts a choice was tuned on.
Split = Literal["train", "eval", "warmup", "dev"]
SPLITS: tuple[Split, ...] = ("train", "eval", "warmup", "dev")


@dataclass(frozen=True)
class Record:
    """One prompt with whatever its forms need.

    `response` is the SFT target; `chosen` and `rejected` the preference pair; `reference` what a
    checker compares an answer with. A prompt-only record can be evaluated but not trained on.
    """

    id: str
    source: str
    language: str
    objective: Objective
    category: str  # a task family or a harm category
    prompt: str
    response: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    reference: str | None = None

    @property
    def has_sft(self) -> bool:
        return self.response is not None

    @property
    def has_preference(self) -> bool:
        return self.chosen is not None and self.rejected is not None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict) -> Record:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


def record_id(source: str, language: str, category: str, prompt: str) -> str:
    """A stable id from the content, so that the same prompt keeps its id across runs and seeds."""
    digest = hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:12]
    return f"{source}:{language}:{category}:{digest}"


def prompt_key(prompt: str) -> str:
    """What makes two prompts the same: case and spacing do not."""
    return " ".join(unicodedata.normalize("NFC", prompt).casefold().split())
