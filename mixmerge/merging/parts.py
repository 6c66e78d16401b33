"""A tensor is merged in parts: flat spans of `CHUNK` entries, whose few float32 copies stay in
a core's cache. Whatever needs a whole tensor (which entries to keep, SLERP's angle, a
rescaling) is decided in passes over its parts first."""

from __future__ import annotations

from collections.abc import Callable

import torch

CHUNK = 2**16  # entries of a tensor that a part takes

# Rows of flat float32 values (one row per model) at a slice or at positions, of the rows
# listed (None: all): computed part by part on demand, as the whole is never held.
Values = Callable[[slice | torch.Tensor, list[int] | None], torch.Tensor]


def chunks(count: int) -> list[slice]:
    """The parts of a flat tensor of `count` entries, in order."""
    return [slice(start, min(start + CHUNK, count)) for start in range(0, count, CHUNK)]


def rows_of(values: Values, rows: list[int], count: int) -> Values:
    """`values` as the rows `rows` of its `count` (repeated, or in any order)."""
    if rows == list(range(count)):
        return values

    def chosen(index: slice | torch.Tensor, subset: list[int] | None = None) -> torch.Tensor:
        return values(index, rows if subset is None else [rows[i] for i in subset])

    return chosen
