"""The `report` section: which models the paper's tables set side by side."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from mixmerge.config.common import ModelRef, Strict
from mixmerge.config.evaluation import BootstrapConfig


class ByPhaseConfig(Strict):
    """One row of a table with a column group per training phase (the paper's SFT and DPO
    stages)."""

    sft: ModelRef | None = None
    dpo: ModelRef | None = None


class ComparisonConfig(Strict):
    """Rows (label: model) each compared with `baseline` on the same prompts."""

    baseline: ModelRef
    rows: Annotated[dict[str, ModelRef], Field(min_length=1)]


class AblationConfig(Strict):
    """Merges that differ in the weight of `model` only: the curve over that weight."""

    model: ModelRef
    merges: Annotated[list[ModelRef], Field(min_length=2)]


class ReportConfig(Strict):
    """The paper's tables. `objective` is Table 1: rows by label, a model per stage, each
    compared with `baseline` (the 15 % mixture) at the same stage."""

    baseline: ByPhaseConfig
    objective: Annotated[dict[str, ByPhaseConfig], Field(min_length=1)]
    language: ComparisonConfig | None = None
    order: ComparisonConfig | None = None
    ablation: AblationConfig | None = None
    # Rows of Table 1 again, with the weights a search chose (`merge/<search>-best`) in place
    # of the fixed ones: the paper's claims about those rows are checked on them too.
    searched: dict[str, ByPhaseConfig] = {}
    bootstrap: BootstrapConfig = BootstrapConfig()

    @model_validator(mode="after")
    def _searched_rows_are_table_rows(self) -> ReportConfig:
        strangers = sorted(set(self.searched) - set(self.objective))
        if strangers:
            raise PydanticCustomError(
                "searched",
                "`searched` rows stand for rows of `objective`, which has no {labels}",
                {"labels": ", ".join(strangers)},
            )
        return self
