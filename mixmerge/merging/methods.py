"""The merge computations: pure functions over tensors, the very ones merges run.

Semantics follow mergekit (which the paper used). With τᵢ = θᵢ − θ_base:
linear Σwᵢθᵢ / Σwᵢ; SLERP between two tensors, each taken as one vector; and one task-vector
merge θ_base + λ·Σwᵢτ̂ᵢ (divided by Σwᵢ over the kept entries when normalising), where τ̂ᵢ is
τᵢ thinned by magnitude (TIES), at random (DARE) or without outliers (Breadcrumbs), and, with
sign consensus (TIES, DARE-TIES), only the entries agreeing with the sign of Σwᵢτ̂ᵢ are kept.

A computation (`linear`, `slerp`, `task_vector`, as the registry's `Method.computation` names
them) merges one tensor: from the models' same-named tensors, flat, a row each, in their own
dtype, it yields the merged tensor, flat, in float32 parts of `CHUNK` entries, in order, which
the engine writes as they come. What needs a whole tensor (which entries to keep, SLERP's
angle, DARE's rescaling) is decided first, in passes over the tensor's parts that keep only a
rule (`Cutoff`, `Band`, `Drawn`) or a number; the arithmetic then runs part by part, on all the
models at once (one row each). A part's few float32 copies stay in a core's cache, and a merge
never holds more than its inputs and a few parts.

Equal magnitudes at a cutoff. mergekit 0.1.5 (mergekit/sparsify.py) keeps the first k of
`torch.argsort(magnitudes, descending=True)` (TIES) and a window of an ascending `torch.sort`
(Breadcrumbs). Both sorts are unstable: among entries of equal magnitude at a boundary, which
are kept is whatever the sort's internals leave, and on bf16 task vectors, whose magnitudes tie
by the thousand, that is a visible share of a tensor (about 1 % of a small bf16 model's merged
entries). Here every cutoff follows one order, that of a stable descending sort (for TIES,
mergekit's own sort made stable): entries rank by magnitude, and among equal magnitudes the
earlier in flat (row-major) order ranks higher. As many entries are kept as in mergekit, the
same ones wherever magnitudes differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import torch

from mixmerge.merging.registry import Method

CHUNK = 2**16  # entries of a tensor that a part takes
SAMPLE = 2**16  # entries drawn to bracket a selection over a large tensor
BRACKET = 0.01  # the share on either side of a selection's that the bracket spans

# Rows of flat float32 magnitudes (one row per task vector) at a slice or at positions, of
# the rows listed (None: all): computed part by part on demand, as the whole is never held.
Values = Callable[[slice | torch.Tensor, list[int] | None], torch.Tensor]


def chunks(count: int) -> list[slice]:
    return [slice(start, min(start + CHUNK, count)) for start in range(0, count, CHUNK)]


def linear(
    tensors: torch.Tensor, weights: Sequence[float], normalize: bool
) -> Iterator[torch.Tensor]:
    """Σwᵢθᵢ, divided by Σwᵢ when normalising: a model soup (Wortsman et al., 2022, Model soups,
    arXiv 2203.05482), as mergekit's linear merge."""
    for part in chunks(tensors.shape[1]):
        merged = torch.zeros(part.stop - part.start, dtype=torch.float32)
        for row, weight in zip(tensors[:, part], weights, strict=True):
            merged.add_(row.float(), alpha=weight)
        yield merged / sum(weights) if normalize else merged


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


def slerp(tensors: torch.Tensor, t: float) -> Iterator[torch.Tensor]:
    """Spherical linear interpolation (Shoemake, 1985) from the first row (t = 0) to the
    second (t = 1), each taken as one vector, as mergekit's slerp: the angle is the whole
    tensors', the interpolation runs part by part."""
    v0, v1 = tensors
    a, b = slerp_coefficients(t, v0, v1)
    for part in chunks(tensors.shape[1]):
        yield a * v0[part].float() + b * v1[part].float()


def _float32_below(value: float) -> float:
    """The largest float32 under `value`: for float32 x, x > it exactly when x >= value."""
    return float(torch.nextafter(torch.tensor(value), torch.tensor(-math.inf)))


@dataclass(frozen=True)
class Cutoff:
    """The k largest entries of a flat tensor, in the order of a stable descending sort (equal
    values: the earlier first): those above `threshold`, and those equal to it that sit before
    flat position `position`. A rule, so that any part of the tensor can be tested alone."""

    threshold: float
    position: int

    @cached_property
    def _below(self) -> float:
        return _float32_below(self.threshold)

    def _cut(self, part: torch.Tensor, start: int) -> int:
        """How many leading entries of `part` (from flat position `start`) keep ties."""
        return min(max(self.position - start, 0), part.numel())

    def keep(self, values: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Which of `values`, the entries from flat position `start` on, are among the k."""
        cut = self._cut(values, start)
        if cut == 0:
            return values > self.threshold
        mask = values >= self.threshold
        if cut < values.numel():
            mask[cut:] = values[cut:] > self.threshold
        return mask

    def thin_(self, delta: torch.Tensor, start: int = 0) -> None:
        """Set to 0, in place, the entries of `delta` (flat, from flat position `start` on)
        whose magnitude is not among the k: hardshrink keeps |x| > its bound."""
        if self.threshold == -math.inf:
            return
        cut = self._cut(delta, start)
        for span, bound in ((delta[:cut], self._below), (delta[cut:], self.threshold)):
            if span.numel():
                torch.ops.aten.hardshrink.out(span, bound, out=span)


def everything(count: int) -> Cutoff:
    return Cutoff(-math.inf, count)


def nothing() -> Cutoff:
    return Cutoff(math.inf, 0)


def tops(values: Values, count: int, ks: Sequence[int]) -> list[Cutoff]:
    """For each row of the `count` columns `values` gives, its `k` largest (k from `ks`),
    exactly, without holding them. A selection over a whole large tensor is most of a TIES
    merge's time, so a seeded sample first brackets each answer and one pass over the parts
    counts (and keeps, when needed) what lies inside the brackets; a row whose bracket missed
    is then selected over all its entries."""
    cutoffs: list[Cutoff | None] = [
        nothing() if k <= 0 else everything(count) if k >= count else None for k in ks
    ]
    open_rows = [row for row, cutoff in enumerate(cutoffs) if cutoff is None]
    if open_rows and count > 4 * SAMPLE:
        found = _bracketed(_rows(values, open_rows, len(ks)), count, [ks[r] for r in open_rows])
        for row, cutoff in zip(open_rows, found, strict=True):
            cutoffs[row] = cutoff
    missed = [row for row, cutoff in enumerate(cutoffs) if cutoff is None]
    if missed:
        whole = torch.cat([values(part, missed) for part in chunks(count)], dim=1)
        for entries, row in zip(whole, missed, strict=True):
            cutoffs[row] = _exact(entries, ks[row])
    return cutoffs


def _rows(values: Values, rows: list[int], count: int) -> Values:
    """`values` as the rows `rows` of its `count` (repeated, or in any order)."""
    if rows == list(range(count)):
        return values

    def chosen(index: slice | torch.Tensor, subset: list[int] | None = None) -> torch.Tensor:
        return values(index, rows if subset is None else [rows[i] for i in subset])

    return chosen


def _exact(values: torch.Tensor, k: int) -> Cutoff:
    threshold = float(torch.kthvalue(values, values.numel() - k + 1).values)
    above = int(torch.count_nonzero(values > threshold))
    ties = torch.nonzero(values == threshold).reshape(-1)
    return Cutoff(threshold, int(ties[k - above - 1]) + 1)


def _above(values: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """Per row of `values` (magnitudes), how many exceed the row's bound: float arithmetic
    (x − b > 0 exactly when x > b), twice as fast as comparing and counting."""
    return (values - bounds[:, None]).clamp_min_(0).sign_().sum(1).long()


def _bracketed(values: Values, count: int, ks: Sequence[int]) -> list[Cutoff | None]:
    """From a seeded sample, each row's bracket: the sample's values at the row's share ±
    `BRACKET`. bf16 task vectors have, near the cutoff, a few magnitudes each tied by
    thousands, and the k-th largest is most often one of them: where the bracket holds such
    values, the nearest on either side of the row's share in the sample are tried (the share
    often falls near the edge of one, where the sample cannot tell on which side), and counts
    above and at each, in one pass, settle the row when one is the k-th largest. The rows left
    open are selected from the entries inside their brackets, a pass that costs several times
    as much."""
    generator = torch.Generator().manual_seed(count)
    drawn = values(torch.randint(count, (SAMPLE,), generator=generator), None)
    brackets = []
    for row, k in zip(drawn, ks, strict=True):
        share = 1 - k / count
        brackets.append((_drawn_at(row, share - BRACKET), _drawn_at(row, share + BRACKET)))
    parts = chunks(count)
    cutoffs: list[Cutoff | None] = [None] * len(ks)
    tied = {}  # row: the values most likely the k-th largest, where many drawn entries tie
    for row, (drawn_row, k, (low, high)) in enumerate(zip(drawn, ks, brackets, strict=True)):
        near = _tied_near(drawn_row, SAMPLE * (1 - k / count), low, high)
        if near is not None:
            tied[row] = near
    if tied:
        rows = list(tied)
        found = _select_at(
            _rows(values, rows, len(ks)), [ks[r] for r in rows], parts, list(tied.values())
        )
        for row, cutoff in zip(rows, found, strict=True):
            cutoffs[row] = cutoff
    open_rows = [row for row, cutoff in enumerate(cutoffs) if cutoff is None]
    if open_rows:
        found = _select_inside(
            _rows(values, open_rows, len(ks)),
            [ks[r] for r in open_rows],
            parts,
            [brackets[r] for r in open_rows],
        )
        for row, cutoff in zip(open_rows, found, strict=True):
            cutoffs[row] = cutoff
    return cutoffs


def _tied_near(
    drawn: torch.Tensor, rank: float, low: float, high: float
) -> tuple[float, float] | None:
    """Of the drawn values in [low, high] that at least 1/256 of the sample shares, the
    nearest whose ranks in the sorted sample reach `rank` from below, and from above (the
    same value when its ranks hold `rank`; the other one when one side has none); None when
    there is none."""
    inside = drawn[(drawn >= low) & (drawn <= high)]
    value, copies = torch.unique(inside, return_counts=True)  # ascending
    first = int(torch.count_nonzero(drawn < low)) + copies.cumsum(0) - copies
    spans = zip(value.tolist(), first.tolist(), copies.tolist(), strict=True)
    tied = [(v, start, start + c) for v, start, c in spans if c >= SAMPLE // 256]
    if not tied:
        return None
    below = [v for v, start, _ in tied if start <= rank]
    above = [v for v, _, end in tied if end >= rank]
    return (below[-1] if below else above[0]), (above[0] if above else below[-1])


def _drawn_at(drawn: torch.Tensor, share: float) -> float:
    """The value of the sample at `share` of its ascending order (its ends beyond them)."""
    return float(drawn.kthvalue(min(SAMPLE, max(1, round(SAMPLE * share)))).values)


def _select_at(
    values: Values,
    ks: Sequence[int],
    parts: list[slice],
    candidates: Sequence[tuple[float, ...]],
) -> list[Cutoff | None]:
    """The cutoffs whose threshold is one of the two candidates given for their row, from
    each part's counts above each and at each (once when every row's two are one value);
    None where it is neither."""
    if all(first == second for first, second in candidates):
        candidates = [(first,) for first, _ in candidates]
    columns = torch.tensor(candidates).T[:, :, None]  # candidate × row × 1

    def counted(part: slice) -> torch.Tensor:
        magnitudes = values(part, None)
        found = []
        for column in columns:
            # sign(x − t) is 1 above t, 0 at it, −1 below: its sum and the sum of its
            # magnitude give both counts (exact: float32 holds integers up to 2^24).
            signs = (magnitudes - column).sign_()
            difference, outside = signs.sum(1), signs.abs_().sum(1)
            found += [(difference + outside) / 2, part.stop - part.start - outside]
        return torch.stack(found)

    counts = torch.stack(list(map(counted, parts))).long()  # parts × (above, at)s × rows
    totals = counts.sum(0).tolist()
    cutoffs: list[Cutoff | None] = []
    for row, (k, pair) in enumerate(zip(ks, candidates, strict=True)):
        cutoff = None
        for slot, threshold in enumerate(pair):
            greater, tied = totals[2 * slot][row], totals[2 * slot + 1][row]
            if greater < k <= greater + tied:
                ties = counts[:, 2 * slot + 1, row]
                cutoff = _place(threshold, ties, k - greater, parts, values, row)
                break
        cutoffs.append(cutoff)
    return cutoffs


def _select_inside(
    values: Values, ks: Sequence[int], parts: list[slice], brackets: Sequence[tuple[float, float]]
) -> list[Cutoff | None]:
    """The cutoffs whose threshold is inside its bracket (low, high), selected from the
    entries there; None where it is not."""
    low = torch.tensor([b[0] for b in brackets])[:, None]
    high = torch.tensor([b[1] for b in brackets])[:, None]
    below_low = torch.tensor([_float32_below(b[0]) for b in brackets])

    def scanned(part: slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        magnitudes = values(part, None)
        above = _above(magnitudes, high[:, 0])
        inside = magnitudes >= low
        inside &= magnitudes <= high
        return above, _above(magnitudes, below_low) - above, magnitudes[inside]

    found = list(map(scanned, parts))  # per part: above, how many inside, those entries
    above = torch.stack([f[0] for f in found]).sum(0).tolist()
    by_part = [f[2].split(f[1].tolist()) for f in found]
    cutoffs: list[Cutoff | None] = []
    for row, k in enumerate(ks):
        inside = [entries[row] for entries in by_part]
        candidates = torch.cat(inside)
        rank = k - above[row]
        if not 0 < rank <= candidates.numel():
            cutoffs.append(None)
            continue
        threshold = float(candidates.kthvalue(candidates.numel() - rank + 1).values)
        wanted = rank - int(torch.count_nonzero(candidates > threshold))
        ties = torch.tensor([int(torch.count_nonzero(p == threshold)) for p in inside])
        cutoffs.append(_place(threshold, ties, wanted, parts, values, row))
    return cutoffs


def _place(
    threshold: float,
    ties: torch.Tensor,
    wanted: int,
    parts: list[slice],
    values: Values,
    row: int,
) -> Cutoff:
    """The cutoff that keeps the first `wanted` entries equal to `threshold` (`ties`: how many
    each part has): only the part where they reach `wanted` is computed again, for the position
    of the last one kept."""
    cumulative = ties.cumsum(0)
    if wanted == int(cumulative[-1]):
        return Cutoff(threshold, parts[-1].stop)
    last = int(torch.searchsorted(cumulative, wanted))
    earlier = int(cumulative[last] - ties[last])
    positions = torch.nonzero(values(parts[last], [row])[0] == threshold).reshape(-1)
    return Cutoff(threshold, parts[last].start + int(positions[wanted - earlier - 1]) + 1)


@dataclass(frozen=True)
class Band:
    """Entries ranked below an `upper` cutoff but within a `lower` one (Breadcrumbs)."""

    upper: Cutoff
    lower: Cutoff

    def keep(self, values: torch.Tensor, start: int = 0) -> torch.Tensor:
        return self.lower.keep(values, start) & ~self.upper.keep(values, start)

    def thin_(self, delta: torch.Tensor, start: int = 0) -> None:
        delta.mul_(self.keep(delta.abs(), start))


@dataclass(frozen=True)
class Drawn:
    """Entries kept at random, the draw made for the whole tensor (DARE)."""

    mask: torch.Tensor

    def keep(self, values: torch.Tensor, start: int = 0) -> torch.Tensor:
        return self.mask[start : start + values.numel()]

    def thin_(self, delta: torch.Tensor, start: int = 0) -> None:
        delta.mul_(self.keep(delta, start))


Rule = Cutoff | Band | Drawn


def magnitude_k(count: int, density: float) -> int:
    """TIES keeps the `density` share of entries largest in magnitude, at least one, as
    mergekit's sparsify.magnitude (params keep densities in (0, 1])."""
    return count if density >= 1 else max(1, int(density * count))


def outlier_ks(count: int, density: float, gamma: float) -> tuple[int, int]:
    """Breadcrumbs drops the `gamma` share of largest entries, then the smallest, to keep the
    `density` share; when the two overlap, fewer are dropped from the top, as in mergekit's
    sparsify.magnitude_outliers: the ranks it keeps are those from the first k to the second."""
    if density >= 1:
        return 0, count
    kept = int(density * count)
    dropped = min(int(gamma * count), count - kept)
    return dropped, dropped + kept


def keep_rules(
    method: Method,
    values: Values,
    count: int,
    densities: Sequence[float],
    gammas: Sequence[float],
    generators: Sequence[torch.Generator],
) -> list[Rule | None]:
    """Which entries of each task vector (the rows whose magnitudes `values` gives) `method`
    keeps, or None for all."""
    if method.sparsify == "magnitude":
        return tops(values, count, [magnitude_k(count, d) for d in densities])
    if method.sparsify == "magnitude_outliers":
        ks = [outlier_ks(count, d, g) for d, g in zip(densities, gammas, strict=True)]
        rows = [row for row in range(len(ks)) for _ in range(2)]
        found = tops(_rows(values, rows, len(ks)), count, [k for pair in ks for k in pair])
        return [Band(found[i], found[i + 1]) for i in range(0, len(found), 2)]
    if method.sparsify == "random":
        return [random_rule(count, d, g) for d, g in zip(densities, generators, strict=True)]
    return [None] * len(densities)


def random_rule(count: int, density: float, generator: torch.Generator) -> Rule:
    """Keep each entry with probability `density` (DARE's drop)."""
    if density >= 1:
        return everything(count)
    return Drawn(torch.rand(count, generator=generator) < density)


def l1_factors(values: Values, count: int, rules: Sequence[Rule]) -> list[float]:
    """The factors that give thinned task vectors back their L1 norm, as mergekit rescales
    DARE's drops; in expectation DARE's 1 / density."""

    def sums(part: slice) -> list[tuple[float, float]]:
        magnitudes = values(part, None)
        return [
            (float(row.sum()), float(row[rule.keep(row, part.start)].sum()))
            for row, rule in zip(magnitudes, rules, strict=True)
        ]

    before, after = [0.0] * len(rules), [0.0] * len(rules)
    for part in map(sums, chunks(count)):
        for row, (whole, kept) in enumerate(part):
            before[row] += whole
            after[row] += kept
    return [1.0 if b < 1e-7 or a < 1e-7 else b / a for b, a in zip(before, after, strict=True)]


def _sum_rows(rows: torch.Tensor) -> torch.Tensor:
    """Σ of the rows, first to last, as mergekit's sum over models (dim 0) adds them."""
    if len(rows) == 1:
        return rows[0].clone()
    total = torch.add(rows[0], rows[1])
    for row in rows[2:]:
        total.add_(row)
    return total


def combine(
    base: torch.Tensor,
    thinned: torch.Tensor,
    weights: Sequence[float],
    sign_consensus: bool,
    normalize: bool,
    scale: float,
) -> torch.Tensor:
    """θ_base + λ·Σwᵢτ̂ᵢ, entry by entry (`thinned`: a row per model), with TIES's sign
    election if asked, in mergekit's order of operations
    (merge_methods/generalized_task_arithmetic.py), so that the results agree to the bit.
    Overwrites `thinned`."""
    column = torch.tensor(weights)[:, None]
    weighted = thinned.mul_(column)
    if sign_consensus:
        # The elected sign, + where the sum is 0 as in mergekit; a sum is -0 only when every
        # term is, and then no entry agrees with either sign.
        elected = torch.copysign(torch.ones(()), _sum_rows(weighted))
        agreeing = weighted.mul_(elected).clamp_min_(0)  # |wτ| where its sign is elected
        mixed = _sum_rows(agreeing).mul_(elected)
        divisor = _sum_rows(agreeing.sign_().mul_(column))
        if min(weights) > 0:
            # The divisor is 0 only where no entry agrees, and `mixed` is 0 there: any positive
            # divisor does as mergekit's 1, and clamping is cheaper than finding those entries.
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
    return mixed.add_(base)


def task_vector(
    method: Method,
    tensors: torch.Tensor,
    base: torch.Tensor,
    weights: Sequence[float],
    densities: Sequence[float],
    gammas: Sequence[float],
    normalize: bool,
    rescale: bool,
    scale: float,
    generators: Sequence[torch.Generator],
    observe: Callable[[int, torch.Tensor], None] | None = None,
) -> Iterator[torch.Tensor]:
    """Task arithmetic (Ilharco et al., 2023, arXiv 2212.04089), TIES (Yadav et al., 2023, arXiv
    2306.01708), DARE and DARE-TIES (Yu et al., 2024, arXiv 2311.03099) and Breadcrumbs (Davari &
    Belilovsky, 2024, arXiv 2312.06795): one computation, `method`'s options, as mergekit's
    generalized task arithmetic, from a flat `base` in any dtype. `scale` is λ; a generator per
    model seeds DARE's drops; `observe` sees each part's flat start and task vectors (a row
    each) before they are thinned."""
    count = base.numel()

    def magnitudes(index: slice | torch.Tensor, rows: list[int] | None) -> torch.Tensor:
        entries = tensors[:, index] if rows is None else tensors[:, index][rows]
        return entries.to(torch.float32, copy=True).sub_(base[index].to(torch.float32)).abs_()

    rules = keep_rules(method, magnitudes, count, densities, gammas, generators)
    factors = l1_factors(magnitudes, count, rules) if rescale and None not in rules else None

    def merged(part: slice) -> torch.Tensor:
        chunk_base = base[part].to(torch.float32)
        deltas = tensors[:, part].to(torch.float32, copy=True).sub_(chunk_base)
        if observe:
            observe(part.start, deltas)
        for row, rule in zip(deltas, rules, strict=True):
            if rule is not None:
                rule.thin_(row, part.start)
        if factors:
            deltas.mul_(torch.tensor(factors)[:, None])
        return combine(chunk_base, deltas, weights, method.sign_consensus, normalize, scale)

    yield from map(merged, chunks(count))
