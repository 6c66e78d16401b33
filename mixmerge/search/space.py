"""A merge recipe's search space: the numbers of a recipe given as `{grid: [...]}`, each a slot
with its key path, and the points of their product, each a recipe with every slot filled."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

from mixmerge.config.searches import PAPER_GRID


@dataclass(frozen=True)
class Slot:
    path: tuple[str | int, ...]  # where the value goes in the recipe: ("models", 1, "weight")
    values: tuple[float, ...]

    @property
    def name(self) -> str:
        return ".".join(str(step) if isinstance(step, str) else f"[{step}]" for step in self.path)


def slots(recipe: Any, path: tuple = ()) -> list[Slot]:
    """Every `{grid: ...}` in the recipe, in the order they appear. Raises ValueError naming a
    space that is empty or not a list of numbers."""
    if isinstance(recipe, dict) and set(recipe) == {"grid"}:
        values = PAPER_GRID if recipe["grid"] == "paper" else recipe["grid"]
        numbers = isinstance(values, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        )
        if not numbers or not values:
            raise ValueError(f"{_name(path)}: a grid is a non-empty list of numbers, or `paper`")
        return [Slot(path, tuple(float(v) for v in values))]
    if isinstance(recipe, dict):
        return [s for key, value in recipe.items() for s in slots(value, (*path, key))]
    if isinstance(recipe, list):
        return [s for i, value in enumerate(recipe) for s in slots(value, (*path, i))]
    return []


def points(found: list[Slot]) -> list[dict[str, float]]:
    """The grid's points, the first slot varying slowest: {slot name: value}."""
    return [
        {slot.name: value for slot, value in zip(found, values, strict=True)}
        for values in itertools.product(*(slot.values for slot in found))
    ]


def filled(recipe: dict, found: list[Slot], point: dict[str, float]) -> dict:
    """The recipe with each slot's value from `point`."""
    out = copy.deepcopy(recipe)
    for slot in found:
        holder = out
        for step in slot.path[:-1]:
            holder = holder[step]
        holder[slot.path[-1]] = point[slot.name]
    return out


def _name(path: tuple) -> str:
    return Slot(path, ()).name or "<recipe>"
