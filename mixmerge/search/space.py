"""A search's space: a template (a merge recipe whose numbers may be given as `{grid: [...]}`
or `{range: [low, high]}`, each a slot with its key path); the points of the grids' product;
and the recipe a point makes, the template with every slot filled from it."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

from mixmerge.config.searches import PAPER_GRID


@dataclass(frozen=True)
class Slot:
    path: tuple[str | int, ...]  # where the value goes in the template: ("models", 1, "weight")
    values: tuple[float, ...] | None  # a grid's; None for a range
    low: float | None = None
    high: float | None = None

    @property
    def name(self) -> str:
        return ".".join(str(step) if isinstance(step, str) else f"[{step}]" for step in self.path)


def slots(template: Any, path: tuple = ()) -> list[Slot]:
    """Every `{grid: ...}` and `{range: ...}` in the template, in the order they appear. Raises
    ValueError naming a space that is empty, not numbers, or a range whose low is not below
    its high."""
    if isinstance(template, dict) and set(template) == {"grid"}:
        values = PAPER_GRID if template["grid"] == "paper" else template["grid"]
        if not isinstance(values, (list, tuple)) or not values or not _numbers(values):
            raise ValueError(f"{_name(path)}: a grid is a non-empty list of numbers, or `paper`")
        return [Slot(path, tuple(float(v) for v in values))]
    if isinstance(template, dict) and set(template) == {"range"}:
        bounds = template["range"]
        if not isinstance(bounds, list) or len(bounds) != 2 or not _numbers(bounds):
            raise ValueError(f"{_name(path)}: a range is [low, high], two numbers")
        if not bounds[0] < bounds[1]:
            raise ValueError(f"{_name(path)}: the range {bounds} is empty: low must be below high")
        return [Slot(path, None, float(bounds[0]), float(bounds[1]))]
    if isinstance(template, dict):
        return [s for key, value in template.items() for s in slots(value, (*path, key))]
    if isinstance(template, list):
        return [s for i, value in enumerate(template) for s in slots(value, (*path, i))]
    return []


def _numbers(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def points(found: list[Slot]) -> list[dict[str, float]]:
    """The grid's points, the first slot varying slowest: {slot name: value}. Every slot must
    be a grid."""
    return [
        {slot.name: value for slot, value in zip(found, values, strict=True)}
        for values in itertools.product(*(slot.values for slot in found))
    ]


def filled(template: dict, found: list[Slot], point: dict[str, float]) -> dict:
    """The recipe at `point`: the template with each slot's value from it."""
    out = copy.deepcopy(template)
    for slot in found:
        holder = out
        for step in slot.path[:-1]:
            holder = holder[step]
        holder[slot.path[-1]] = point[slot.name]
    return out


def _name(path: tuple) -> str:
    return Slot(path, ()).name or "<template>"
