"""Top-k selection over a tensor too large to sort: which entries of each task vector are
among its k largest in magnitude, exactly, as a rule any part of the tensor can be tested by.

A selection over a whole large tensor is most of a TIES merge's time. A seeded sample brackets
each answer, and one pass over the parts counts (and keeps, when needed) what lies inside the
brackets; a row whose bracket missed is then selected over all its entries.

Equal magnitudes at a cutoff are ranked by flat (row-major) position, in one of two orders:
the earlier first (a stable descending sort: mergekit's TIES keeps the first k of a descending
`argsort`), or the later first (the reverse of a stable ascending sort: mergekit's Breadcrumbs
keeps a window of an ascending `sort`). mergekit 0.1.5's sorts are unstable, so among tied
entries at a boundary it keeps whatever its sort's internals leave; with its sorts made
stable, its choices are exactly these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch

from mixmerge.merging.parts import Values, chunks, rows_of

SAMPLE = 2**16  # entries drawn to bracket a selection over a large tensor
BRACKET = 0.01  # the share on either side of a selection's that the bracket spans


def _float32_below(value: float) -> float:
    """The largest float32 under `value`: for float32 x, x > it exactly when x >= value."""
    return float(torch.nextafter(torch.tensor(value), torch.tensor(-math.inf)))


@dataclass(frozen=True)
class Cutoff:
    """The k largest entries of a flat tensor: those above `threshold`, and those equal to it
    that sit before flat position `position` (the earlier first), or from it on (`later`: the
    later first). A rule, so that any part of the tensor can be tested alone."""

    threshold: float
    position: int
    later: bool = False

    @cached_property
    def _below(self) -> float:
        return _float32_below(self.threshold)

    def _cut(self, part: torch.Tensor, start: int) -> int:
        """How many leading entries of `part` (from flat position `start`) sit before
        `position`."""
        return min(max(self.position - start, 0), part.numel())

    def keep(self, values: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Which of `values`, the entries from flat position `start` on, are among the k."""
        cut = self._cut(values, start)
        mask = torch.empty(values.shape, dtype=torch.bool)
        before, after = (torch.gt, torch.ge) if self.later else (torch.ge, torch.gt)
        before(values[:cut], self.threshold, out=mask[:cut])
        after(values[cut:], self.threshold, out=mask[cut:])
        return mask

    def thin_(self, delta: torch.Tensor, start: int = 0) -> None:
        """Set to 0, in place, the entries of `delta` (flat, from flat position `start` on)
        whose magnitude is not among the k: hardshrink keeps |x| > its bound."""
        if self.threshold == -math.inf:
            return
        cut = self._cut(delta, start)
        ties, no_ties = self._below, self.threshold
        bounds = (no_ties, ties) if self.later else (ties, no_ties)
        for span, bound in zip((delta[:cut], delta[cut:]), bounds, strict=True):
            if span.numel():
                torch.ops.aten.hardshrink.out(span, bound, out=span)


def everything(count: int) -> Cutoff:
    return Cutoff(-math.inf, count)


def nothing() -> Cutoff:
    return Cutoff(math.inf, 0)


def tops(values: Values, count: int, ks: Sequence[int], later: bool = False) -> list[Cutoff]:
    """For each row of the `count` columns `values` gives, its `k` largest (k from `ks`),
    exactly, without holding them; equal values ranked the earlier first, or the `later`
    first."""
    cutoffs: list[Cutoff | None] = [
        nothing() if k <= 0 else everything(count) if k >= count else None for k in ks
    ]
    open_rows = [row for row, cutoff in enumerate(cutoffs) if cutoff is None]
    if open_rows and count > 4 * SAMPLE:
        chosen = rows_of(values, open_rows, len(ks))
        found = _bracketed(chosen, count, [ks[r] for r in open_rows], later)
        for row, cutoff in zip(open_rows, found, strict=True):
            cutoffs[row] = cutoff
    missed = [row for row, cutoff in enumerate(cutoffs) if cutoff is None]
    if missed:
        whole = torch.cat([values(part, missed) for part in chunks(count)], dim=1)
        for entries, row in zip(whole, missed, strict=True):
            cutoffs[row] = _exact(entries, ks[row], later)
    return cutoffs


def _exact(values: torch.Tensor, k: int, later: bool) -> Cutoff:
    threshold = float(torch.kthvalue(values, values.numel() - k + 1).values)
    above = int(torch.count_nonzero(values > threshold))
    ties = torch.nonzero(values == threshold).reshape(-1)
    wanted = k - above
    if later:  # the last `wanted` ties: those from the first of them on
        return Cutoff(threshold, int(ties[ties.numel() - wanted]), later=True)
    return Cutoff(threshold, int(ties[wanted - 1]) + 1)


def _above(values: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """Per row of `values` (magnitudes), how many exceed the row's bound: float arithmetic
    (x − b > 0 exactly when x > b), twice as fast as comparing and counting."""
    return (values - bounds[:, None]).clamp_min_(0).sign_().sum(1).long()


def _bracketed(values: Values, count: int, ks: Sequence[int], later: bool) -> list[Cutoff | None]:
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
        chosen = rows_of(values, rows, len(ks))
        found = _select_at(chosen, [ks[r] for r in rows], parts, list(tied.values()), later)
        for row, cutoff in zip(rows, found, strict=True):
            cutoffs[row] = cutoff
    open_rows = [row for row, cutoff in enumerate(cutoffs) if cutoff is None]
    if open_rows:
        found = _select_inside(
            rows_of(values, open_rows, len(ks)),
            [ks[r] for r in open_rows],
            parts,
            [brackets[r] for r in open_rows],
            later,
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
    later: bool,
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
                cutoff = _place(threshold, ties, k - greater, parts, values, row, later)
                break
        cutoffs.append(cutoff)
    return cutoffs


def _select_inside(
    values: Values,
    ks: Sequence[int],
    parts: list[slice],
    brackets: Sequence[tuple[float, float]],
    later: bool,
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
        cutoffs.append(_place(threshold, ties, wanted, parts, values, row, later))
    return cutoffs


def _place(
    threshold: float,
    ties: torch.Tensor,
    wanted: int,
    parts: list[slice],
    values: Values,
    row: int,
    later: bool,
) -> Cutoff:
    """The cutoff that keeps the first `wanted` entries equal to `threshold`, or the last
    (`later`), of those there are (`ties`: how many each part has): only the part where the
    first ones reach their count is computed again, for the position just after them."""
    cumulative = ties.cumsum(0)
    # The last `wanted` of n ties are those after the first n − `wanted`.
    first = int(cumulative[-1]) - wanted if later else wanted
    if first == 0:
        return Cutoff(threshold, 0, later)
    if first == int(cumulative[-1]):
        return Cutoff(threshold, parts[-1].stop, later)
    last = int(torch.searchsorted(cumulative, first))
    earlier = int(cumulative[last] - ties[last])
    positions = torch.nonzero(values(parts[last], [row])[0] == threshold).reshape(-1)
    return Cutoff(threshold, parts[last].start + int(positions[first - earlier - 1]) + 1, later)


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
