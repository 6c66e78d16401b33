"""The `mixtures` section: training sets with a set safety share."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from mixmerge.config.common import Share, Strict, StudyLanguages, domain_check


class MixtureConfig(Strict):
    """A training set: `safety` is the share of safety examples (0.15 = 15 %), the rest general.

    Every example is drawn in each of `forms`: `sft` (prompt and target) and `preference`
    (prompt, chosen and rejected).
    """

    safety: Share
    languages: StudyLanguages | None = None  # default: every study language
    size_per_language: PositiveInt | None = None
    size_total: PositiveInt | None = None
    forms: Annotated[list[Literal["sft", "preference"]], Field(min_length=1)] = [
        "sft",
        "preference",
    ]
    seed: int = 0

    @model_validator(mode="after")
    def _realisable(self, info: ValidationInfo) -> MixtureConfig:
        if (self.size_per_language is None) == (self.size_total is None):
            raise PydanticCustomError(
                "mixture_size", "give exactly one of `size_per_language` and `size_total`"
            )
        languages = self.languages or (info.context or {}).get("languages")
        if not languages:
            return self
        if self.size_total is not None and self.size_total < len(languages):
            raise PydanticCustomError(
                "mixture_too_small",
                "`size_total` {size} leaves some of its {n} languages without examples",
                {"size": self.size_total, "n": len(languages)},
            )
        share_problem = domain_check(info, "mixture_problem")
        problem = share_problem and share_problem(
            self.safety, languages, self.size_per_language, self.size_total
        )
        if problem:
            raise PydanticCustomError("share", problem)
        return self
