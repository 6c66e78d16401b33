"""A merge, planned: the method, its inputs, and every parameter's value at each tensor, as the
recipe gives them (a number, a gradient over depth, or rules by tensor name) and the method's
definition defaults them. Everything is resolved before anything is computed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mixmerge.core.errors import StageError
from mixmerge.merging.definition import MergeMethod
from mixmerge.merging.parameters import depth, resolve
from mixmerge.merging.weights import Weights


@dataclass(frozen=True)
class Job:
    """One merge, resolved: the method, the inputs with their own settings, the merge's.

    For SLERP the inputs are its two ends, from t = 0 to t = 1, and `base` is None: only
    task-vector methods subtract a base.
    """

    method: MergeMethod
    inputs: Sequence[Weights]
    model_settings: Sequence[dict]  # per input: its own parameters (absent = not set)
    merge_settings: dict  # the merge's parameters, and defaults for the models'
    base: Weights | None
    seed: int | str  # any key: a replicate's is its merge's seed and its training seed
    out_dtype: str | None  # a safetensors dtype name; None keeps each tensor's

    @property
    def template(self) -> Weights:
        """The model whose tensor names, order and dtypes the output takes."""
        return self.base or self.inputs[0]

    def arguments(self, name: str) -> dict[str, object]:
        """Every parameter of the method at tensor `name`, by its recipe name: a model's own
        setting, else the merge's, else the method's default (a list, one per input, for a
        parameter of each model)."""
        t = depth(name, self.template.layers)
        found = {}
        for parameter in self.method.parameters:
            merge_wide = self.merge_settings.get(parameter.name)
            if parameter.per_model:
                found[parameter.name] = [
                    resolve(name, t, [own.get(parameter.name), merge_wide], parameter.default)
                    for own in self.model_settings
                ]
            else:
                found[parameter.name] = resolve(name, t, [merge_wide], parameter.default)
        return found

    def generators(self, name: str) -> list[torch.Generator]:
        """A generator per input for tensor `name` (random drops), from the job's seed: the
        same recipe and inputs give the same bytes."""
        return [_generator(self.seed, name, index) for index in range(len(self.inputs))]


def _generator(seed: int | str, name: str, index: int) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}:{name}:{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def preflight(job: Job) -> None:
    """Resolve every tensor's parameters before anything is computed: a gradient of weights
    that sums to zero at some depth, where the method divides by their sum, is refused now,
    not halfway through the merge."""
    if job.method.parameter("weight") is None or job.method.parameter("normalize") is None:
        return
    for name in job.template.tensors:
        arguments = job.arguments(name)
        if arguments["normalize"] and abs(sum(arguments["weight"])) < 1e-12:
            raise StageError(
                f"the weights of tensor {name} sum to zero, and the merge divides by it"
            )
