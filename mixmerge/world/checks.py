"""What the embedded world can give a `builtin` data source: prompts enough per language for
every split asked, as many of the eval and dev ones as can be scored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mixmerge.core.records import OBJECTIVES
from mixmerge.world.build import capacity, dev_capacity

if TYPE_CHECKING:
    from mixmerge.config.data import BuiltinSourceConfig


def source_problems(source: BuiltinSourceConfig, languages: Sequence[str]) -> list[str]:
    """Every split size of `source` the world cannot fill in one of `languages`."""
    problems = []
    for objective in OBJECTIVES:
        asked = {s: getattr(getattr(source, s), objective) for s in ("eval", "warmup", "train")}
        have = min(capacity(objective, code) for code in languages)
        if sum(asked.values()) > have:
            parts = " + ".join(f"{s} {n}" for s, n in asked.items())
            problems.append(f"{objective}: {parts} = {sum(asked.values())} > {have}")
        scorable = min(capacity(objective, code, split="eval") for code in languages)
        if asked["eval"] > scorable:
            problems.append(f"{objective}: eval {asked['eval']} > {scorable} that can be scored")
        elif sum(asked.values()) <= have and getattr(source.dev, objective):
            dev = getattr(source.dev, objective)
            spare = min(dev_capacity(objective, code, asked) for code in languages)
            if dev > spare:
                problems.append(
                    f"{objective}: dev {dev} > {spare} that can be scored and are left once "
                    "eval, warm-up and train are drawn"
                )
    return problems
