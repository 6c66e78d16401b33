"""Merge methods by name, with mergekit's semantics (which the paper used).

A method is a row of this table: which computation it is (`linear`, `slerp`, or one
`task_vector` merge with options), whether it needs a base, how many models, and its
parameters with their defaults (`REQUIRED` when there is none). The computations live in
`mixmerge/merging/methods.py`; this table has no torch, so that validating params stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

REQUIRED = object()


@dataclass(frozen=True)
class Method:
    name: str
    paper: str
    computation: Literal["linear", "slerp", "task_vector"]
    needs_base: bool
    min_models: int
    max_models: int | None
    # Parameters of each input model (weight, density...) and of the merge as a whole.
    model_parameters: dict[str, object] = field(default_factory=dict)
    merge_parameters: dict[str, object] = field(default_factory=dict)
    # For task-vector merges: how task vectors are thinned, and whether signs are elected.
    sparsify: Literal["magnitude", "random", "magnitude_outliers"] | None = None
    sign_consensus: bool = False


def _task_vector(name, paper, sparsify=None, consensus=False, normalize=False, rescale=False):
    model = {"weight": 1.0}
    if sparsify:
        model["density"] = 1.0
    if sparsify == "magnitude_outliers":
        model["gamma"] = 0.01
    return Method(
        name=name,
        paper=paper,
        computation="task_vector",
        needs_base=True,
        min_models=1,
        max_models=None,
        model_parameters=model,
        merge_parameters={"normalize": normalize, "rescale": rescale, "lambda": 1.0},
        sparsify=sparsify,
        sign_consensus=consensus,
    )


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "linear",
            "Wortsman et al., 2022, Model soups (arXiv 2203.05482)",
            "linear",
            needs_base=False,
            min_models=2,
            max_models=None,
            model_parameters={"weight": 1.0},
            merge_parameters={"normalize": True},
        ),
        Method(
            "slerp",
            "Shoemake, 1985, spherical linear interpolation",
            "slerp",
            needs_base=True,
            min_models=2,
            max_models=2,
            merge_parameters={"t": REQUIRED},
        ),
        _task_vector("task_arithmetic", "Ilharco et al., 2023, Task arithmetic (arXiv 2212.04089)"),
        _task_vector(
            "ties",
            "Yadav et al., 2023, TIES-Merging (arXiv 2306.01708)",
            sparsify="magnitude",
            consensus=True,
            normalize=True,
        ),
        _task_vector(
            "dare_linear",
            "Yu et al., 2024, DARE (arXiv 2311.03099)",
            sparsify="random",
            rescale=True,
        ),
        _task_vector(
            "dare_ties",
            "Yu et al., 2024, DARE (arXiv 2311.03099), with TIES's sign election",
            sparsify="random",
            consensus=True,
            rescale=True,
        ),
        _task_vector(
            "breadcrumbs",
            "Davari & Belilovsky, 2024, Model Breadcrumbs (arXiv 2312.06795)",
            sparsify="magnitude_outliers",
        ),
        _task_vector(
            "breadcrumbs_ties",
            "Davari & Belilovsky, 2024, Model Breadcrumbs, with TIES's sign election",
            sparsify="magnitude_outliers",
            consensus=True,
        ),
    )
}
