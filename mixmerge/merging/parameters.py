"""A merge parameter's value for one tensor, as mergekit resolves it.

A setting is a number, a list of numbers (a "gradient", interpolated over layer depth), or a
list of rules `{"filter", "value"}` of which the first whose filter occurs in the tensor's name
applies (plain data, as params and mergekit write them). Depth `t` is i / (layers − 1) for a
tensor of layer i, and 0 for tensors outside the layers (embeddings, final norm), as in
mergekit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_LAYER = re.compile(r"\.layers\.(\d+)\.")


def layer_of(name: str) -> int | None:
    match = _LAYER.search(name)
    return int(match.group(1)) if match else None


def depth(name: str, layers: int) -> float:
    index = layer_of(name)
    if index is None:
        return 0.0
    return index / (layers - 1) if layers > 1 else 1.0


def evaluate(setting, name: str, t: float):
    """The value of `setting` for tensor `name` at depth `t`, or None when no rule applies."""
    if setting is None or isinstance(setting, (bool, int, float)):
        return setting
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in setting):
        scaled = t * (len(setting) - 1)
        low = int(scaled)
        high = min(len(setting) - 1, low + 1)
        return (1 - (scaled - low)) * setting[low] + (scaled - low) * setting[high]
    for rule in setting:
        if rule.get("filter") in (None, "*") or rule["filter"] in name:
            return evaluate(rule["value"], name, t)
    return None


def resolve(name: str, t: float, sources: Sequence[object], default):
    """The first value any of the settings in `sources` (most specific first) gives for
    `name`, else the method's default."""
    for source in sources:
        value = evaluate(source, name, t) if source is not None else None
        if value is not None:
            return value
    return default
