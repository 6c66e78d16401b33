"""The merge methods, each one definition (mixmerge/merging/definition.py says how one reads):
its signature is its recipe's schema, its body its computation, with mergekit's semantics
(which the paper used). With τᵢ = θᵢ − θ_base, the task-vector methods are θ_base + λ·Σwᵢτ̂ᵢ,
each thinning τ its own way. A new method is a function here, and its tests.

This module imports no torch: its computations run on what the engine hands them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mixmerge.merging.definition import Fraction, PerModel, Share, merge_method

if TYPE_CHECKING:
    from mixmerge.merging.tensors import Ends, Models, Parts, TaskVectors


@merge_method("Wortsman et al., 2022, Model soups (arXiv 2203.05482)", models=(2, None))
def linear(models: Models, weight: PerModel[float] = 1.0, normalize: bool = True) -> Parts:
    """Σwᵢθᵢ / Σwᵢ (a model soup).

    Without `normalize`, Σwᵢθᵢ."""
    return models.weighted(weight, normalize)


@merge_method("Shoemake, 1985, spherical linear interpolation")
def slerp(ends: Ends, t: float) -> Parts:
    """Spherical interpolation from `base` (t = 0) to the other model, each tensor one vector;
    linear where they are nearly collinear."""
    return ends.slerp(t)


@merge_method("Ilharco et al., 2023, Task arithmetic (arXiv 2212.04089)")
def task_arithmetic(
    vectors: TaskVectors,
    weight: PerModel[float] = 1.0,
    normalize: bool = False,
    rescale: bool = False,
    lambda_: float = 1.0,
) -> Parts:
    """θ_base + λ·Σwᵢτᵢ."""
    return vectors.merged(weight, rescale=rescale, normalize=normalize, scale=lambda_)


@merge_method("Yadav et al., 2023, TIES-Merging (arXiv 2306.01708)")
def ties(
    vectors: TaskVectors,
    weight: PerModel[float] = 1.0,
    density: PerModel[Share] = 1.0,
    normalize: bool = True,
    rescale: bool = False,
    lambda_: float = 1.0,
) -> Parts:
    """Keep each τᵢ's `density` largest entries, elect each entry's sign by Σwᵢτ̂ᵢ, and average
    the entries that agree with it."""
    kept = vectors.largest(density)
    return vectors.merged(
        weight, kept, rescale=rescale, elect_signs=True, normalize=normalize, scale=lambda_
    )


@merge_method("Yu et al., 2024, DARE (arXiv 2311.03099)")
def dare_linear(
    vectors: TaskVectors,
    weight: PerModel[float] = 1.0,
    density: PerModel[Share] = 1.0,
    normalize: bool = False,
    rescale: bool = True,
    lambda_: float = 1.0,
) -> Parts:
    """Drop each entry of τᵢ with probability 1 − `density` and rescale what is left to τᵢ's
    L1 norm, then add."""
    kept = vectors.drawn(density)
    return vectors.merged(weight, kept, rescale=rescale, normalize=normalize, scale=lambda_)


@merge_method("Yu et al., 2024, DARE (arXiv 2311.03099), with TIES's sign election")
def dare_ties(
    vectors: TaskVectors,
    weight: PerModel[float] = 1.0,
    density: PerModel[Share] = 1.0,
    normalize: bool = False,
    rescale: bool = True,
    lambda_: float = 1.0,
) -> Parts:
    """DARE's drops, then TIES's sign election."""
    kept = vectors.drawn(density)
    return vectors.merged(
        weight, kept, rescale=rescale, elect_signs=True, normalize=normalize, scale=lambda_
    )


@merge_method("Davari & Belilovsky, 2024, Model Breadcrumbs (arXiv 2312.06795)")
def breadcrumbs(
    vectors: TaskVectors,
    weight: PerModel[float] = 1.0,
    density: PerModel[Share] = 1.0,
    gamma: PerModel[Fraction] = 0.01,
    normalize: bool = False,
    rescale: bool = False,
    lambda_: float = 1.0,
) -> Parts:
    """Drop the `gamma` share of each τᵢ's largest entries (outliers) and its smallest, to keep
    the `density` share, then add."""
    kept = vectors.band(density, gamma)
    return vectors.merged(weight, kept, rescale=rescale, normalize=normalize, scale=lambda_)


@merge_method("Davari & Belilovsky, 2024, Model Breadcrumbs, with TIES's sign election")
def breadcrumbs_ties(
    vectors: TaskVectors,
    weight: PerModel[float] = 1.0,
    density: PerModel[Share] = 1.0,
    gamma: PerModel[Fraction] = 0.01,
    normalize: bool = False,
    rescale: bool = False,
    lambda_: float = 1.0,
) -> Parts:
    """Breadcrumbs' window, then TIES's sign election."""
    kept = vectors.band(density, gamma)
    return vectors.merged(
        weight, kept, rescale=rescale, elect_signs=True, normalize=normalize, scale=lambda_
    )


@merge_method("Wan et al., 2024, FuseChat, its SCE merge (arXiv 2408.07990)")
def sce(vectors: TaskVectors, select_topk: Share = 1.0) -> Parts:
    """Select the `select_topk` share of entries where the τᵢ vary most across the models,
    weigh each τᵢ by its share of their mean square, elect signs by Στ̂ᵢ, and average the
    agreeing entries.

    As mergekit's `sce` (merge_methods/sce.py), in its order of operations; equal variances
    at the cutoff go the earlier first, where its `topk` leaves them to its internals."""

    def variances(index, rows):  # across the models, entry by entry (a single row)
        return vectors.differences(index, None).var(dim=0, unbiased=False)[None]

    cutoff = None
    if select_topk < 1:
        varying = sum(int(variances(part, None).count_nonzero()) for part in vectors.parts())
        (cutoff,) = vectors.top(variances, [int(varying * select_topk)])

    def selected(part):  # τ̂ at a part: τ where the variance is among the selected
        deltas = vectors.differences(part, None)
        if cutoff is None:
            return deltas
        return deltas * cutoff.keep(variances(part, None)[0], part.start)

    squares = [0.0] * vectors.models
    for part in vectors.parts():
        for row, delta in enumerate(selected(part)):
            squares[row] += float(delta.double().square().sum())
    if abs(sum(squares) / vectors.count) < 1e-6:  # every τ̂ near 0: weighed alike
        weights = [1 / vectors.models] * vectors.models
    else:
        weights = [square / sum(squares) for square in squares]
    for part in vectors.parts():
        deltas = selected(part)
        elected = (deltas.sum(dim=0) >= 0).float() * 2 - 1
        counted = deltas.new_tensor(weights)[:, None] * (deltas.sign() == elected)
        merged = (deltas * counted).sum(dim=0) / counted.sum(dim=0).clamp(min=1e-6)
        yield vectors.base_part(part) + merged
