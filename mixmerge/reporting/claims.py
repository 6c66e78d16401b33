"""The paper's headline claims (Aakanksha et al., 2024, arXiv 2410.10801, Table 1 and §4), and
whether this run supports them.

A claim names differences from a baseline and the direction it says they go (harm change down,
win-rate up). It is *supported* when every difference's interval lies on the claimed side of
zero, *contradicted* when any lies on the other side, and *inconclusive* otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The direction each metric should move in for a claim that a model does better.
WANTED = {"harm_change": -1, "win_rate": 1}


@dataclass(frozen=True)
class Claim:
    text: str
    paper: str  # the paper's figures behind it
    table: str  # objective, language or order
    rows: tuple[str, ...]  # labels in that table; () for every row
    phases: tuple[str, ...]  # for the objective table: the training phases it reads
    metrics: tuple[str, ...]


CLAIMS = (
    Claim(
        "At the SFT stage, the Linear merge wins more often against the base than the 15 % mix.",
        "win-rate 76.0 against 67.4 (+8.6)",
        "objective", ("Linear",), ("sft",), ("win_rate",),
    ),
    Claim(
        "At the DPO stage, the TIES merge reduces harm more than the 15 % mix.",
        "harm change 10.4 points lower than the mix's",
        "objective", ("TIES",), ("dpo",), ("harm_change",),
    ),
    Claim(
        "SLERP beats the 15 % mix on both harm and win-rate, at both stages.",
        "better on both axes at SFT and at DPO",
        "objective", ("SLERP",), ("sft", "dpo"), ("harm_change", "win_rate"),
    ),
    Claim(
        "Merging monolingual models (TIES) beats the multilingual 15 % mix on both axes.",
        "six languages −63.2 / 71.2, en + fr + es −65.3 / 77.0, mix −56.6 / 67.4",
        "language", (), (), ("harm_change", "win_rate"),
    ),
)  # fmt: skip


METRIC_NAMES = {"harm_change": "harm change", "win_rate": "win-rate"}


def _differences(claim: Claim, tables: Mapping[str, Mapping]) -> list[tuple[str, str, dict]] | None:
    """(what, metric, difference) for every difference the claim is about; None when this
    run's report lacks a row or phase it needs."""
    table = tables.get(claim.table)
    if not table:
        return None
    labels = claim.rows or tuple(k for k in table if k != "baseline")
    found = []
    for label in labels:
        row = table.get(label)
        if row is None:
            return None
        entries = [row[p] for p in claim.phases if p in row] if claim.phases else [row]
        if len(entries) != max(1, len(claim.phases)):
            return None
        for phase, e in zip(claim.phases or ("",), entries, strict=True):
            if "vs_baseline" not in e:
                return None
            for metric in claim.metrics:
                # A difference from the table's baseline (a mixture), not the figure itself.
                where = " ".join(p for p in (label, phase.upper()) if p)
                name = f"{where}: Δ {METRIC_NAMES[metric]} vs baseline"
                found.append((name, metric, e["vs_baseline"][metric]))
    return found


def verdict(claim: Claim, tables: Mapping[str, Mapping]) -> dict:
    """The claim, its verdict on this run, and the differences behind it."""
    differences = _differences(claim, tables)
    out = {"claim": claim.text, "paper": claim.paper}
    if differences is None:
        return out | {"verdict": "not tested", "evidence": []}
    # +1: the interval lies on the claimed side of zero; -1: on the other; 0: it spans zero.
    sides = [
        0 if not d["clear"] else (1 if (d["low"] > 0) == (WANTED[metric] > 0) else -1)
        for _, metric, d in differences
    ]
    if any(side < 0 for side in sides):
        result = "contradicted"
    elif all(side > 0 for side in sides):
        result = "supported"
    else:
        result = "inconclusive"
    evidence = [
        {"difference": name, "value": d["difference"], "low": d["low"], "high": d["high"]}
        for name, _, d in differences
    ]
    return out | {"verdict": result, "evidence": evidence}
