"""The `searches` table: `search@<name>` stages, each scoring the points of a merge recipe's
space on the dev split."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PositiveInt, model_validator
from pydantic_core import PydanticCustomError

from mixmerge.config.common import ModelRef, Strict

# "an exhaustive search over {0, 0.3, 0.5, 0.7, 1}" per model: the paper's (Aakanksha et al.,
# 2024, arXiv 2410.10801, §2.3) choice of every merge's weights.
PAPER_GRID = (0.0, 0.3, 0.5, 0.7, 1.0)


class SearchConfig(Strict):
    """`merge`: a merge recipe as in `merges`, in which any number may be a space to search:
    `{grid: [values]}` (`{grid: paper}`: the paper's 0, 0.3, 0.5, 0.7, 1) or, for `nsga2`,
    `{range: [low, high]}`. Each trial is scored with the first training seed's replicates on
    the dev split; a point the merge refuses (weights that sum to zero) is skipped and counted.

    - `grid`: every point of the spaces' product, in order; the grid must fit in `trials`.
    - `nsga2`: `trials` points drawn by NSGA-II (Deb et al., 2002; Optuna's NSGAIISampler) in
      generations of `population`, towards a lower harmful rate and a higher win-rate on dev.
      Each draw is seeded by `seed` and the trial's number and made from the trials before it,
      so that the same seed gives the same trials, and a resumed search those an uninterrupted
      one would have drawn.

    Two points are chosen from the front: `best`, the highest win-rate whose harm is no worse
    than `choose_against`'s (the lowest harm, flagged, when no point clears it), and `knee`,
    the front's point nearest the ideal (both objectives at their best on the front), each
    objective scaled to the front's range. The stage merges both, for every training seed, as
    the merges `<name>-best` and `<name>-knee` (models/merge/), which `evaluate-chosen@<name>`
    judges on eval like any merge."""

    merge: dict[str, Any]
    method: Literal["grid", "nsga2"] = "grid"
    # Models scored on dev beside the trials, to set the front against (the mixtures): the
    # base, or models of the recipe's stage.
    references: list[ModelRef] = []
    # The reference whose dev harm the `best` point may not exceed (the paper's bar: the 15 %
    # mixture).
    choose_against: ModelRef
    trials: PositiveInt
    seed: int = 0
    population: Annotated[int, Field(ge=2)] = 8
    max_shard_bytes: Annotated[int, Field(gt=0)] = 5 * 10**9

    @model_validator(mode="after")
    def _bar_is_scored(self) -> SearchConfig:
        if self.choose_against not in self.references:
            raise PydanticCustomError(
                "choose_against",
                "`choose_against` ({model}) must be one of the `references`, scored on dev",
                {"model": self.choose_against},
            )
        return self
