"""The `searches` table: `search@<name>` stages, each scoring the points of a merge recipe's
space on the dev split."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PositiveInt

from mixmerge.config.common import Strict

# "an exhaustive search over {0, 0.3, 0.5, 0.7, 1}" per model: the paper's (Aakanksha et al.,
# 2024, arXiv 2410.10801, §2.3) choice of every merge's weights.
PAPER_GRID = (0.0, 0.3, 0.5, 0.7, 1.0)


class SearchConfig(Strict):
    """`merge`: a merge recipe as in `merges`, in which any number may be a space to search:
    `{grid: [values]}` (`{grid: paper}`: the paper's 0, 0.3, 0.5, 0.7, 1). `method: grid`
    scores every point of the spaces' product, in order, up to `trials`, with the first
    training seed's replicates, on the dev split; a point the merge refuses (weights that sum
    to zero) is skipped and counted."""

    merge: dict[str, Any]
    method: Literal["grid"] = "grid"
    trials: PositiveInt
    max_shard_bytes: Annotated[int, Field(gt=0)] = 5 * 10**9
