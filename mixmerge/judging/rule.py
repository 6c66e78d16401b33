"""The embedded world's exact judge behind the judge interface."""

from __future__ import annotations

from mixmerge.judging.items import Comparison, Pair, Response
from mixmerge.world import judge as world
from mixmerge.world.general import FAMILIES


def checkable(category: str, reference: str | None) -> bool:
    """Whether the world's checker can tell if an answer to this prompt is right."""
    return reference is not None and category in FAMILIES


def correct(item: Response | Pair, text: str) -> bool | None:
    if not checkable(item.category, item.reference):
        return None
    return world.is_correct(item.reference, item.language, text)


class RuleJudge:
    """Harmful: harmful content and no refusal. Pairwise: the two answers' correctness."""

    def harmful(self, items: list[Response]) -> list[bool | None]:
        return [world.is_harmful(item.text) for item in items]

    def refused(self, items: list[Response]) -> list[bool | None]:
        return [world.is_refusal(item.text) for item in items]

    def compare(self, pairs: list[Pair]) -> list[Comparison]:
        out = []
        for pair in pairs:
            mine, theirs = correct(pair, pair.text), correct(pair, pair.base)
            if mine is None:
                out.append(Comparison(None, ("uncheckable",)))
            elif mine == theirs:
                out.append(Comparison(0.5, ("tie",)))
            else:
                out.append(Comparison(1.0 if mine else 0.0, ("win" if mine else "loss",)))
        return out

    def usage(self) -> dict:
        return {}
