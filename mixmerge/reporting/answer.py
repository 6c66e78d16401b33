"""The report's answer, first: for each training phase and each axis, whether mixing or merging
wins this run, with the figures that say so.

The answer reads Table 1 only: its baseline is the mixture the paper compares merges with (the
15 % mix), and each merge row's difference from it on the same prompts, seed by seed, with its
interval. Merging wins an axis when the best merge is better than the mix with an interval
that excludes zero; mixing wins when every merge is worse with such an interval; otherwise
this run cannot tell them apart, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from mixmerge import paths
from mixmerge.config.report import ReportConfig
from mixmerge.reporting import tables

# Which way is better on each headline axis.
BETTER = {"harm_change": -1, "win_rate": 1}
AXES = {"harm_change": "harm", "win_rate": "general quality (win-rate)"}

Winner = Literal["merging", "mixing", "neither"]


@dataclass(frozen=True)
class Verdict:
    """Who wins one axis at one phase, and the figures behind it."""

    phase: str  # sft or dpo
    metric: str  # harm_change or win_rate
    winner: Winner
    merge: str  # the best merge's label in Table 1
    merge_value: float
    mix_value: float | None  # None when Table 1 has no row for the baseline
    difference: float
    low: float
    high: float

    @property
    def axis(self) -> str:
        return AXES[self.metric]

    def headline(self) -> str:
        if self.winner == "neither":
            return "Neither wins clearly"
        return f"{self.winner.capitalize()} wins"

    def figures(self) -> str:
        """The best merge's figure against the mix's, and their difference with its interval."""
        against = ""
        if self.mix_value is not None:
            against = f" against the mix's {tables.number(self.mix_value)}"
        return (
            f"{self.merge} {tables.number(self.merge_value)}{against}: "
            f"Δ {tables.number(self.difference, signed=True)} "
            f"[{tables.number(self.low)}, {tables.number(self.high)}]"
        )

    def sentence(self) -> str:
        """The verdict as a line of report.md."""
        where = f"At {self.phase.upper()}, on {self.axis}"
        if self.winner == "mixing":
            return f"{where}, **mixing wins**: even the best merge is worse ({self.figures()})."
        if self.winner == "merging":
            return f"{where}, **merging wins** ({self.figures()})."
        return (
            f"{where}, **neither wins clearly**: no merge is clearly better, and this one cannot "
            f"be told from the mix ({self.figures()})."
        )


def answer(objective: Mapping[str, Mapping[str, dict]], spec: ReportConfig) -> list[Verdict]:
    """The verdicts on Table 1 (`objective`, as `tables.objective` builds it): each phase that
    has a merge row, on each headline axis."""
    verdicts = []
    for phase in tables.PHASES:
        baseline = getattr(spec.baseline, phase)
        merges = {
            label: row[phase]
            for label, row in objective.items()
            if phase in row
            and "vs_baseline" in row[phase]
            and paths.parse(row[phase]["model"]).kind == "merge"
        }
        # The baseline's own figures, where Table 1 has it as a row (the default does).
        rows = [row[phase] for row in objective.values() if phase in row]
        mix = next((e for e in rows if baseline is not None and e["model"] == baseline), None)
        if not merges:
            continue
        for metric, sign in BETTER.items():
            gains = {
                label: e["vs_baseline"][metric]
                for label, e in merges.items()
                if e["vs_baseline"][metric]["difference"] is not None
            }
            if not gains:
                continue

            winner, best = _deciding(gains, sign)
            d = gains[best]
            verdicts.append(
                Verdict(
                    phase,
                    metric,
                    winner,
                    best,
                    merges[best][metric],
                    None if mix is None else mix[metric],
                    d["difference"],
                    d["low"],
                    d["high"],
                )
            )
    return verdicts


def _deciding(gains: Mapping[str, dict], sign: int) -> tuple[Winner, str]:
    """Who wins an axis (`sign`: +1 where higher is better) given each merge's difference from
    the mix, and the merge the verdict rests on: the best of those clearly better (merging
    wins); else the best of those that cannot be told from the mix (neither); else, every one
    clearly worse, the best of them (mixing wins)."""

    def side(label: str) -> int:
        low, high = gains[label]["low"], gains[label]["high"]
        return 0 if low <= 0 <= high else (1 if sign * low > 0 else -1)

    for wanted, winner in ((1, "merging"), (0, "neither"), (-1, "mixing")):
        shown = [label for label in gains if side(label) == wanted]
        if shown:
            return winner, max(shown, key=lambda label: sign * gains[label]["difference"])
    raise ValueError("no merge to decide on")
