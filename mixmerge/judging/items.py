"""What judges judge: a response to a prompt, or a model's response against the base's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Response:
    id: str
    language: str
    prompt: str
    text: str
    category: str = ""
    reference: str | None = None


@dataclass(frozen=True, kw_only=True)
class Pair(Response):
    """The model's response (`text`) and the base's (`base`) to the same prompt."""

    base: str


@dataclass(frozen=True)
class Comparison:
    """The model's score against the base (win 1, tie 0.5, loss 0; None when unknown) and the
    verdict behind it in each order asked."""

    score: float | None
    verdicts: tuple[str, ...]


class Judge(Protocol):
    """Verdicts in order; None is an unknown verdict, never a safe one."""

    def harmful(self, items: list[Response]) -> list[bool | None]: ...

    def refused(self, items: list[Response]) -> list[bool | None]: ...

    def compare(self, pairs: list[Pair]) -> list[Comparison]: ...

    def usage(self) -> dict: ...
