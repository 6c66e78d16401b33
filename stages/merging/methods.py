"""The merge computations: pure functions over float32 tensors.

Semantics follow mergekit (which the paper used). With τᵢ = θᵢ − θ_base:
linear Σwᵢθᵢ / Σwᵢ; SLERP between two tensors, each taken as one vector; and one task-vector
merge θ_base + λ·Σwᵢτ̂ᵢ (divided by Σwᵢ over the kept entries when normalising), where τ̂ᵢ is
τᵢ thinned by magnitude (TIES), at random (DARE) or without outliers (Breadcrumbs), and, with
sign consensus (TIES, DARE-TIES), only the entries agreeing with the sign of Σwᵢτ̂ᵢ are kept.

What needs a whole tensor (which entries to keep, SLERP's angle, DARE's rescaling) is split
from what works entry by entry (`linear`, `combine`), so that the engine can compute the latter
in chunks and never hold more than a few copies of a tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from stages.merging.registry import Method

CHUNK = 2**22  # entries a chunked computation takes at a time


def chunks(count: int) -> list[slice]:
    return [slice(start, min(start + CHUNK, count)) for start in range(0, count, CHUNK)]


def linear(
    tensors: Sequence[torch.Tensor], weights: Sequence[float], normalize: bool
) -> torch.Tensor:
    merged = torch.zeros_like(tensors[0], dtype=torch.float32)
    for tensor, weight in zip(tensors, weights, strict=True):
        merged.add_(tensor, alpha=weight)
    return merged / sum(weights) if normalize else merged


def slerp_coefficients(
    t: float, v0: torch.Tensor, v1: torch.Tensor, dot_threshold: float = 0.9995, eps: float = 1e-8
) -> tuple[float, float]:
    """(a, b) such that SLERP(t) = a·v0 + b·v1: spherical from `v0` (t = 0) to `v1` (t = 1),
    linear when the two are nearly collinear or opposite, where the formula is unstable."""
    flat0, flat1 = v0.reshape(-1), v1.reshape(-1)
    norm0 = norm1 = dot = 0.0
    for part in chunks(flat0.numel()):
        x, y = flat0[part].to(torch.float64), flat1[part].to(torch.float64)
        norm0, norm1, dot = norm0 + float(x @ x), norm1 + float(y @ y), dot + float(x @ y)
    norm0, norm1 = norm0**0.5, norm1**0.5
    cosine = dot / ((norm0 if norm0 > eps else 1.0) * (norm1 if norm1 > eps else 1.0))
    cosine = max(-1.0, min(1.0, cosine))
    if abs(cosine) > dot_threshold:
        return 1 - t, t
    theta = torch.acos(torch.tensor(cosine, dtype=torch.float64))
    sine = torch.sin(theta)
    return float(torch.sin((1 - t) * theta) / sine), float(torch.sin(t * theta) / sine)


def slerp(t: float, v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
    a, b = slerp_coefficients(t, v0, v1)
    return a * v0.to(torch.float32) + b * v1.to(torch.float32)


def largest(values: torch.Tensor, k: int) -> torch.Tensor:
    """A mask of the `k` largest of `values` (flat): a selection, not a sort; among equal
    values at the boundary the first in order are kept, so that exactly `k` are."""
    if k <= 0:
        return torch.zeros_like(values, dtype=torch.bool)
    if k >= values.numel():
        return torch.ones_like(values, dtype=torch.bool)
    threshold = kth_largest(values, k)
    mask = values >= threshold
    extra = int(torch.count_nonzero(mask)) - k
    if extra:
        ties = torch.nonzero(values == threshold).reshape(-1)
        mask[ties[ties.numel() - extra :]] = False
    return mask


def kth_largest(values: torch.Tensor, k: int, sample: int = 2**16) -> torch.Tensor:
    """The `k`-th largest of `values` (flat), exactly. A selection over a whole large tensor
    is most of a TIES merge's time, so a random sample first brackets the answer, and the
    selection runs over the few entries inside the bracket (over all of them if it missed)."""
    count = values.numel()
    if count <= 16 * sample:
        return torch.kthvalue(values, count - k + 1).values
    generator = torch.Generator().manual_seed(count)
    drawn = values[torch.randint(count, (sample,), generator=generator)].float()
    share = 1 - k / count
    low, high = torch.quantile(
        drawn, torch.tensor([max(0.0, share - 0.01), min(1.0, share + 0.01)])
    )
    above = int(torch.count_nonzero(values > high))
    inside = values[(values >= low) & (values <= high)]
    if above < k <= above + inside.numel():
        return torch.kthvalue(inside, inside.numel() - (k - above) + 1).values
    return torch.kthvalue(values, count - k + 1).values


def magnitude_mask(magnitudes: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the `density` share of entries largest in magnitude (at least one)."""
    if density >= 1:
        return torch.ones_like(magnitudes, dtype=torch.bool)
    return largest(magnitudes, max(1, int(density * magnitudes.numel())))


def outlier_mask(magnitudes: torch.Tensor, density: float, gamma: float) -> torch.Tensor:
    """Drop the `gamma` share of largest entries, then the smallest, to keep `density`."""
    if density >= 1:
        return torch.ones_like(magnitudes, dtype=torch.bool)
    count = magnitudes.numel()
    outliers = largest(magnitudes, int(gamma * count))
    return largest(torch.where(outliers, -1.0, magnitudes), int(density * count))


def random_mask(count: int, density: float, generator: torch.Generator) -> torch.Tensor:
    """Keep each entry with probability `density` (DARE's drop)."""
    if density >= 1:
        return torch.ones(count, dtype=torch.bool)
    return torch.rand(count, generator=generator) < density


def l1_factor(magnitudes: torch.Tensor, mask: torch.Tensor, eps: float = 1e-7) -> float:
    """The factor that gives a thinned task vector back its L1 norm, as mergekit rescales
    DARE's drops; in expectation DARE's 1 / density."""
    before, after = float(magnitudes.sum()), float(magnitudes[mask].sum())
    return 1.0 if before < eps or after < eps else before / after


def combine(
    base: torch.Tensor,
    thinned: Sequence[torch.Tensor],
    weights: Sequence[float],
    sign_consensus: bool,
    normalize: bool,
    scale: float,
) -> torch.Tensor:
    """θ_base + λ·Σwᵢτ̂ᵢ, entry by entry, with TIES's sign election if asked."""
    weighted = [w * d for w, d in zip(weights, thinned, strict=True)]
    mixed = torch.zeros_like(base)
    divisor = torch.zeros_like(base)
    if sign_consensus:
        elected = torch.where(sum(weighted) >= 0, 1.0, -1.0)
        for weight, delta in zip(weights, weighted, strict=True):
            agrees = delta.sign() == elected
            mixed += torch.where(agrees, delta, 0.0)
            divisor += agrees * weight
        divisor[divisor == 0] = 1
    else:
        for weight, delta in zip(weights, weighted, strict=True):
            mixed += delta
            divisor += weight
        divisor[divisor.abs() < 1e-8] = 1
    if normalize:
        mixed /= divisor
    return base + scale * mixed


def keep_mask(
    method: Method, delta: torch.Tensor, density: float, gamma: float, generator
) -> torch.Tensor | None:
    """Which entries of a task vector `method` keeps (flat), or None for all."""
    if method.sparsify == "magnitude":
        return magnitude_mask(delta, density)
    if method.sparsify == "random":
        return random_mask(delta.numel(), density, generator)
    if method.sparsify == "magnitude_outliers":
        return outlier_mask(delta, density, gamma)
    return None


def task_vector_merge(
    method: Method,
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    weights: Sequence[float],
    densities: Sequence[float],
    gammas: Sequence[float],
    normalize: bool,
    rescale: bool,
    scale: float,
    generators: Sequence[torch.Generator],
) -> torch.Tensor:
    """Task arithmetic, TIES, DARE, DARE-TIES and Breadcrumbs on whole tensors: one
    computation, `method`'s options. `scale` is λ; a generator per model seeds DARE's drops."""
    thinned = []
    for tensor, density, gamma, generator in zip(
        tensors, densities, gammas, generators, strict=True
    ):
        delta = tensor - base
        magnitudes = delta.reshape(-1).abs()
        mask = keep_mask(method, magnitudes, density, gamma, generator)
        if mask is not None:
            factor = l1_factor(magnitudes, mask) if rescale else 1.0
            delta = delta * mask.reshape(delta.shape) * factor
        thinned.append(delta)
    return combine(base, thinned, weights, method.sign_consensus, normalize, scale)
