"""What merge computations are made of: one tensor of every model, and the operations a method
(mixmerge/merging/methods.py) combines, with mergekit's semantics (which the paper used).

The models' same-named tensors come flat, a row each, in their own dtype; a computation yields
the merged tensor, flat, in float32 parts (mixmerge/merging/parts.py), in order, which the
engine writes as they come. What needs a whole tensor (which entries to keep, SLERP's angle,
a rescaling, SCE's weights) is decided first, in passes over the parts that keep only a rule
(mixmerge/merging/selection.py) or a number; the arithmetic then runs part by part, on all the
models at once. A merge never holds more than its inputs and a few parts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

from mixmerge.merging.definition import Inputs, MergeMethod
from mixmerge.merging.parts import Values, chunks, rows_of
from mixmerge.merging.selection import Band, Cutoff, Drawn, Rule, everything, tops

Parts = Iterator[torch.Tensor]
# Sees, part by part, a tensor's task vectors from the base: the part's flat start, and the
# differences (float32, a row per model).
PartObserver = Callable[[int, torch.Tensor], None]


class Models:
    """The models' tensors (a row each)."""

    def __init__(self, tensors: torch.Tensor):
        self.tensors = tensors

    def weighted(self, weights: Sequence[float], normalize: bool) -> Parts:
        """Σwᵢθᵢ, divided by Σwᵢ when normalising, as mergekit's linear merge."""
        for part in chunks(self.tensors.shape[1]):
            merged = torch.zeros(part.stop - part.start, dtype=torch.float32)
            for row, weight in zip(self.tensors[:, part], weights, strict=True):
                merged.add_(row.float(), alpha=weight)
            yield merged / sum(weights) if normalize else merged


class Ends(Models):
    """Two models' tensors: the first at t = 0, the second at t = 1."""

    def slerp(self, t: float) -> Parts:
        """Spherical interpolation, each tensor taken as one vector, as mergekit's slerp: the
        angle is the whole tensors', the interpolation runs part by part."""
        v0, v1 = self.tensors
        a, b = slerp_coefficients(t, v0, v1)
        for part in chunks(self.tensors.shape[1]):
            yield a * v0[part].float() + b * v1[part].float()


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


class TaskVectors:
    """The models' task vectors τᵢ = θᵢ − θ_base (a row each, from a flat `base` in any dtype),
    which a merge adds back to the base. A generator per model seeds random drops; `observe`
    sees each part's task vectors before they are thinned."""

    def __init__(
        self,
        tensors: torch.Tensor,
        base: torch.Tensor,
        generators: Sequence[torch.Generator],
        observe: PartObserver | None = None,
    ):
        self.tensors, self.base = tensors, base.reshape(-1)
        self.count, self.models = self.base.numel(), len(tensors)
        self.generators, self.observe = generators, observe

    def parts(self) -> list[slice]:
        return chunks(self.count)

    def base_part(self, part: slice) -> torch.Tensor:
        """The base at a part, in float32."""
        return self.base[part].to(torch.float32)

    def differences(self, index: slice | torch.Tensor, rows: list[int] | None) -> torch.Tensor:
        """τ at a slice or at positions, of the rows listed (None: all), in float32."""
        entries = self.tensors[:, index] if rows is None else self.tensors[:, index][rows]
        return entries.to(torch.float32, copy=True).sub_(self.base[index].to(torch.float32))

    def magnitudes(self, index: slice | torch.Tensor, rows: list[int] | None) -> torch.Tensor:
        return self.differences(index, rows).abs_()

    def top(self, scores: Values, ks: Sequence[int], later: bool = False) -> list[Cutoff]:
        """For each row of `scores` (values per entry, as `differences` gives them), its `k`
        largest entries (k from `ks`), exactly, equal ones ranked by flat position: the earlier
        first, or the `later` (see mixmerge/merging/selection.py)."""
        return tops(scores, self.count, ks, later)

    def largest(self, densities: Sequence[float]) -> list[Rule]:
        """Keep the `density` share of each τ's entries largest in magnitude, at least one, as
        mergekit's sparsify.magnitude (TIES); equal magnitudes at the cutoff, the earlier
        first, as its descending sort made stable."""
        return tops(self.magnitudes, self.count, [magnitude_k(self.count, d) for d in densities])

    def band(self, densities: Sequence[float], gammas: Sequence[float]) -> list[Rule]:
        """Drop the `gamma` share of each τ's largest entries, then the smallest, to keep the
        `density` share, as mergekit's sparsify.magnitude_outliers (Breadcrumbs): it keeps a
        window of an ascending sort, so equal magnitudes at either end go the later first, as
        that sort made stable leaves them."""
        ks = [outlier_ks(self.count, d, g) for d, g in zip(densities, gammas, strict=True)]
        rows = [row for row in range(len(ks)) for _ in range(2)]
        values = rows_of(self.magnitudes, rows, len(ks))
        found = tops(values, self.count, [k for pair in ks for k in pair], later=True)
        return [Band(found[i], found[i + 1]) for i in range(0, len(found), 2)]

    def drawn(self, densities: Sequence[float]) -> list[Rule]:
        """Keep each entry with probability `density` (DARE's drop), from each model's
        generator."""
        return [
            everything(self.count)
            if density >= 1
            else Drawn(torch.rand(self.count, generator=generator) < density)
            for density, generator in zip(densities, self.generators, strict=True)
        ]

    def merged(
        self,
        weights: Sequence[float],
        kept: Sequence[Rule | None] | None = None,
        *,
        rescale: bool = False,
        elect_signs: bool = False,
        normalize: bool = False,
        scale: float = 1.0,
    ) -> Parts:
        """θ_base + λ·Σwᵢτ̂ᵢ, in mergekit's order of operations (its generalized task
        arithmetic), so that the results agree to the bit: τ̂ᵢ is τᵢ with only the entries
        `kept` (None: all), scaled back to its L1 norm when rescaling (as mergekit rescales
        DARE's drops); electing signs (TIES), only the entries that agree with the sign of
        Σwᵢτ̂ᵢ count; normalising divides by the sum of the weights that count, entry by
        entry."""
        kept = list(kept) if kept is not None else [None] * len(self.tensors)
        rescaled = rescale and None not in kept
        factors = l1_factors(self.magnitudes, self.count, kept) if rescaled else None
        column = torch.tensor(weights)[:, None]

        def part_of(part: slice) -> torch.Tensor:
            chunk_base = self.base[part].to(torch.float32)
            deltas = self.tensors[:, part].to(torch.float32, copy=True).sub_(chunk_base)
            if self.observe:
                self.observe(part.start, deltas)
            for row, rule in zip(deltas, kept, strict=True):
                if rule is not None:
                    rule.thin_(row, part.start)
            if factors:
                deltas.mul_(torch.tensor(factors)[:, None])
            weighted = deltas.mul_(column)
            if elect_signs:
                # The elected sign, + where the sum is 0 as in mergekit; a sum is -0 only when
                # every term is, and then no entry agrees with either sign.
                elected = torch.copysign(torch.ones(()), _sum_rows(weighted))
                agreeing = weighted.mul_(elected).clamp_min_(0)  # |wτ| where its sign is elected
                mixed = _sum_rows(agreeing).mul_(elected)
                divisor = _sum_rows(agreeing.sign_().mul_(column))
                if min(weights) > 0:
                    # The divisor is 0 only where no entry agrees, and `mixed` is 0 there: any
                    # positive divisor does as mergekit's 1, and clamping is cheaper than
                    # finding those entries.
                    divisor.clamp_min_(min(weights))
                else:
                    divisor[divisor == 0] = 1
            else:
                mixed = _sum_rows(weighted)
                divisor = sum(weights)
                divisor = 1 if abs(divisor) < 1e-8 else divisor
            if normalize:
                mixed /= divisor
            if scale != 1:
                mixed *= scale
            return mixed.add_(chunk_base)

        yield from map(part_of, chunks(self.count))


def _sum_rows(rows: torch.Tensor) -> torch.Tensor:
    """Σ of the rows, first to last, as mergekit's sum over models (dim 0) adds them."""
    if len(rows) == 1:
        return rows[0].clone()
    total = torch.add(rows[0], rows[1])
    for row in rows[2:]:
        total.add_(row)
    return total


def magnitude_k(count: int, density: float) -> int:
    """TIES keeps the `density` share of entries, at least one (params keep densities in
    (0, 1])."""
    return count if density >= 1 else max(1, int(density * count))


def outlier_ks(count: int, density: float, gamma: float) -> tuple[int, int]:
    """Breadcrumbs' window, as ranks from the largest: from the first k to the second. When
    the outliers and the density overlap, fewer are dropped from the top, as in mergekit."""
    if density >= 1:
        return 0, count
    kept = int(density * count)
    dropped = min(int(gamma * count), count - kept)
    return dropped, dropped + kept


def l1_factors(values: Values, count: int, kept: Sequence[Rule]) -> list[float]:
    """The factors that give thinned task vectors back their L1 norm, as mergekit rescales
    DARE's drops; in expectation DARE's 1 / density."""

    def sums(part: slice) -> list[tuple[float, float]]:
        magnitudes = values(part, None)
        return [
            (float(row.sum()), float(row[rule.keep(row, part.start)].sum()))
            for row, rule in zip(magnitudes, kept, strict=True)
        ]

    before, after = [0.0] * len(kept), [0.0] * len(kept)
    for part in map(sums, chunks(count)):
        for row, (whole, still) in enumerate(part):
            before[row] += whole
            after[row] += still
    return [1.0 if b < 1e-7 or a < 1e-7 else b / a for b, a in zip(before, after, strict=True)]


def computed(
    method: MergeMethod,
    tensors: torch.Tensor,
    base: torch.Tensor | None,
    arguments: Mapping[str, object],
    generators: Sequence[torch.Generator] = (),
    observe: PartObserver | None = None,
) -> Parts:
    """The merged tensor, in float32 parts: `method`'s computation over the models' flat
    tensors (`tensors`, a row each) and, for task vectors, the flat `base`, with `arguments`
    (every parameter's value at this tensor, by its recipe name)."""
    if method.inputs is Inputs.TASK_VECTORS:
        inputs = TaskVectors(tensors, base, generators, observe)
    else:
        inputs = (Ends if method.inputs is Inputs.ENDS else Models)(tensors)
    return method.compute(inputs, **{p.argument: arguments[p.name] for p in method.parameters})
