"""Why merges interfere: per layer, how the task vectors being merged relate to each other.

For task vectors τᵢ = θᵢ − θ_ref: their norms, the cosine similarity of every pair, and the
share of entries whose signs conflict among those where two or more vectors move (what TIES's
sign election resolves). Statistics accumulate tensor by tensor, in chunks, in float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations

import torch

from stages.merging.parameters import layer_of

CHUNK = 2**24  # entries per chunk: bounds the extra memory for the largest tensors


class Interference:
    def __init__(self, models: Sequence[str]):
        self.models = list(models)
        self.groups: dict[str, dict] = {}

    def observe(
        self, name: str, tensors: Sequence[torch.Tensor], origin: torch.Tensor | None
    ) -> None:
        if origin is None:
            return
        layer = layer_of(name)
        group = self.groups.setdefault(
            "other" if layer is None else str(layer),
            {
                "gram": torch.zeros(len(tensors), len(tensors), dtype=torch.float64),
                "moved": 0,
                "conflicts": 0,
                "entries": 0,
            },
        )
        flat_origin = origin.reshape(-1)
        flats = [t.reshape(-1) for t in tensors]
        for start in range(0, flat_origin.numel(), CHUNK):
            deltas = torch.stack(
                [f[start : start + CHUNK] - flat_origin[start : start + CHUNK] for f in flats]
            )
            wide = deltas.to(torch.float64)
            group["gram"] += wide @ wide.T
            signs = deltas.sign()
            moved = (signs != 0).sum(dim=0) >= 2
            conflicts = moved & ((signs > 0).any(dim=0)) & ((signs < 0).any(dim=0))
            group["moved"] += int(torch.count_nonzero(moved))
            group["conflicts"] += int(torch.count_nonzero(conflicts))
            group["entries"] += deltas.shape[1]

    def _summary(self, gram: torch.Tensor, moved: int, conflicts: int, entries: int) -> dict:
        norms = gram.diagonal().sqrt()
        cosine = {
            f"{self.models[i]} | {self.models[j]}": (
                float(gram[i, j] / (norms[i] * norms[j]))
                if norms[i] > 0 and norms[j] > 0
                else math.nan
            )
            for i, j in combinations(range(len(self.models)), 2)
        }
        return {
            "norms": {model: float(norm) for model, norm in zip(self.models, norms, strict=True)},
            "cosine": cosine,
            "sign_conflicts": conflicts / moved if moved else 0.0,
            "moved_by_two_or_more": moved / entries if entries else 0.0,
        }

    def report(self) -> dict:
        """Per layer (and `other`: embeddings, final norm), and over the whole model."""
        layers = sorted((k for k in self.groups if k != "other"), key=int) + ["other"] * (
            "other" in self.groups
        )
        total = {
            "gram": sum(
                (g["gram"] for g in self.groups.values()),
                torch.zeros(len(self.models), len(self.models), dtype=torch.float64),
            ),
            **{
                key: sum(g[key] for g in self.groups.values())
                for key in ("moved", "conflicts", "entries")
            },
        }
        return {
            "models": self.models,
            "overall": self._summary(**total),
            "layers": {layer: self._summary(**self.groups[layer]) for layer in layers},
        }
