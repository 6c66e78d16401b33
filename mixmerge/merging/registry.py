"""Merge methods by name, with mergekit's semantics (which the paper used).

A method is a row of this table: which computation it is (`linear`, `slerp`, or one
`task_vector` merge with options), whether it needs a base, how many models, and its
parameters with their defaults (`REQUIRED` when there is none). The computations live in
`mixmerge/merging/methods.py`; this table has no torch, so that validating params stays fast
(`merge_problems` is the check params validation asks of every merge).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from mixmerge.config.merges import PER_MODEL, numbers

if TYPE_CHECKING:
    from mixmerge.config.merges import MergeConfig

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


def merge_problems(merge: MergeConfig) -> list[str]:
    """What `merge`'s method refuses in it: a base it needs or takes not, its number of models,
    parameters it has not or needs, densities out of (0, 1], weights it would divide by 0."""
    method = METHODS[merge.method]
    names = [m.model for m in merge.models]
    given = {k for k, v in merge.parameters.model_dump(by_alias=True).items() if v is not None}
    problems = []
    if method.needs_base and merge.base is None:
        problems.append(f"{merge.method} needs a `base`")
    if not method.needs_base and merge.base is not None:
        problems.append(f"{merge.method} takes no `base`")
    if method.computation == "slerp" and merge.base is not None and merge.base not in names:
        problems.append("slerp's `base` (its t = 0 end) must be one of its two models")
    if method.computation == "task_vector" and merge.base in names:
        problems.append("list the base only as `base`: its task vector would be zero")
    too_many = method.max_models is not None and len(names) > method.max_models
    if len(names) < method.min_models or too_many:
        exact = method.min_models == method.max_models
        count = f"{'exactly' if exact else 'at least'} {method.min_models}"
        problems.append(f"{merge.method} merges {count} models, not {len(names)}")
    accepted = set(method.model_parameters) | set(method.merge_parameters)
    problems += [f"{merge.method} takes no parameter `{k}`" for k in sorted(given - accepted)]
    for model in merge.models:
        own = {k for k in PER_MODEL if getattr(model, k) is not None}
        for key in sorted(own - set(method.model_parameters)):
            problems.append(f"{merge.method} takes no `{key}` for {model.model}")
    for key, default in method.merge_parameters.items():
        if default is REQUIRED and key not in given:
            problems.append(f"{merge.method} needs `parameters.{key}`")
    densities = [m.density for m in merge.models] + [merge.parameters.density]
    if any(not 0 < d <= 1 for s in densities if s is not None for d in numbers(s)):
        problems.append("every density must be in (0, 1]")
    default_weight = 1.0 if merge.parameters.weight is None else merge.parameters.weight
    weights = [default_weight if m.weight is None else m.weight for m in merge.models]
    normalize = merge.parameters.normalize
    if normalize is None:
        normalize = method.merge_parameters.get("normalize", False)
    if normalize and all(isinstance(w, (int, float)) for w in weights) and sum(weights) == 0:
        problems.append("the weights sum to zero, and the merge divides by their sum")
    return problems


# What params validation asks of the methods (`mixmerge.config.common.DOMAIN_CHECKS`).
CHECKS = {"merge_methods": tuple(METHODS), "merge_problems": merge_problems}


def merge_context(models: set[str] | None = None) -> dict:
    """The validation context a merge recipe is checked in on its own: its method's checks,
    and the models it may name (None: any)."""
    return {"models": models, **CHECKS}
