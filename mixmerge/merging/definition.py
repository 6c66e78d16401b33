"""A merge method is one definition: a function whose signature declares what it merges and the
parameters a recipe may give it, with their defaults and bounds (as mergekit's `merge_method`).

    @merge_method(paper="Yadav et al., 2023, TIES-Merging (arXiv 2306.01708)")
    def ties(vectors: TaskVectors, weight: PerModel[float] = 1.0,
             density: PerModel[Share] = 1.0, normalize: bool = True, ...) -> Parts:
        return vectors.merged(weight, vectors.largest(density), ...)

The first parameter's type says what the method merges, and so what `base` a recipe gives it:
`Models`, the models themselves (no base); `Ends`, two models, from the one named `base`
(t = 0) to the other; `TaskVectors`, each model's difference from `base`, which the merge adds
back. Its methods (mixmerge/merging/tensors.py) are what a computation is made of: they run a
tensor part by part, as the engine writes it.

Every other parameter is one a recipe may set, by its name (`lambda_` is `lambda`, a keyword in
Python): `bool`, a switch of the merge as a whole; `float`, a setting of the merge as a whole
(a number, a list interpolated over layer depth, or rules by tensor name), resolved for each
tensor before the function is called; `PerModel[float]`, a setting of each model, for which the
merge-wide one is the default; `Annotated[float, Bounds(...)]` (`Share`: in (0, 1]) bounds
every number a setting holds. A parameter without a default is required.

From these definitions come the checks of a recipe (mixmerge/merging/registry.py), the values
the engine calls each computation with, merge.yaml's resolved recipe, the mergekit export and
the docs' method table. This module imports no torch: validating params stays fast.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, get_args, get_origin


class Inputs(Enum):
    """What a method merges: the name of its first parameter's type."""

    MODELS = "Models"
    ENDS = "Ends"
    TASK_VECTORS = "TaskVectors"


@dataclass(frozen=True)
class Bounds:
    """The numbers a setting may hold: from `low` to `high`, each end in or out."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def holds(self, number: float) -> bool:
        above = number > self.low if self.low_open else number >= self.low
        below = number < self.high if self.high_open else number <= self.high
        return above and below

    def __str__(self) -> str:
        opening, closing = "(["[not self.low_open], ")]"[not self.high_open]
        return f"{opening}{self.low:g}, {self.high:g}{closing}"


Share = Annotated[float, Bounds(0, 1, low_open=True)]  # a share of entries kept: (0, 1]
Fraction = Annotated[float, Bounds(0, 1)]  # [0, 1]


class PerModel:
    """`PerModel[float]`: a parameter each model sets for itself."""

    def __class_getitem__(cls, kind):
        return _PerModel(kind)


@dataclass(frozen=True)
class _PerModel:
    kind: object


REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class Parameter:
    """A parameter of a method, as recipes write it."""

    name: str  # as recipes and mergekit write it
    argument: str  # as the computation takes it
    default: object  # REQUIRED when none
    per_model: bool
    switch: bool  # true or false, for the merge as a whole; else a setting
    bounds: Bounds

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class MergeMethod:
    name: str
    paper: str  # the paper that defines it, cited in recipes and docs
    summary: str  # the first paragraph of its docstring, for the docs' table
    inputs: Inputs
    min_models: int
    max_models: int | None
    parameters: tuple[Parameter, ...]
    compute: Callable  # (inputs, **arguments) -> float32 parts of the merged tensor, in order

    @property
    def needs_base(self) -> bool:
        return self.inputs is not Inputs.MODELS

    @property
    def per_model(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if p.per_model)

    @property
    def merge_wide(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if not p.per_model)

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def default(self, name: str, otherwise: object = None) -> object:
        """The default of parameter `name`, or `otherwise` when the method has none for it."""
        found = self.parameter(name)
        return otherwise if found is None or found.required else found.default


METHODS: dict[str, MergeMethod] = {}


def merge_method(
    paper: str, models: tuple[int, int | None] | None = None
) -> Callable[[Callable], Callable]:
    """Register the decorated computation as a merge method named as the function, citing
    `paper`; `models` bounds how many models it merges (by default one or more, two for
    `Ends`)."""

    def register(function: Callable) -> Callable:
        first, *rest = inspect.signature(function).parameters.values()
        try:
            inputs = Inputs(first.annotation)
        except ValueError:
            kinds = ", ".join(i.value for i in Inputs)
            raise TypeError(f"{function.__name__}'s first parameter is one of {kinds}") from None
        low, high = models or ((2, 2) if inputs is Inputs.ENDS else (1, None))
        METHODS[function.__name__] = MergeMethod(
            name=function.__name__,
            paper=paper,
            summary=inspect.cleandoc(function.__doc__ or "").split("\n\n")[0].replace("\n", " "),
            inputs=inputs,
            min_models=low,
            max_models=high,
            parameters=tuple(_parameter(p, function) for p in rest),
            compute=function,
        )
        return function

    return register


def _parameter(declared: inspect.Parameter, function: Callable) -> Parameter:
    kind = eval(declared.annotation, function.__globals__)  # noqa: S307 (the module's own code)
    per_model = isinstance(kind, _PerModel)
    if per_model:
        kind = kind.kind
    bounds = Bounds()
    if get_origin(kind) is Annotated:
        kind, *extras = get_args(kind)
        bounds = next((e for e in extras if isinstance(e, Bounds)), bounds)
    if kind not in (bool, float) or (per_model and kind is bool):
        raise TypeError(
            f"{function.__name__}({declared.name}): a parameter is a bool, a float or a "
            "PerModel[float], bounded or not"
        )
    return Parameter(
        name=declared.name.rstrip("_"),
        argument=declared.name,
        default=declared.default,
        per_model=per_model,
        switch=kind is bool,
        bounds=bounds,
    )
