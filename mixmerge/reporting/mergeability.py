"""The report's section on whether each merge's models can be merged at all: per merge, the
task vectors' size and cosine, the barrier on the path between its models, the merged model's
loss against theirs, and a plain reading (`mixmerge.merging.mergeability`)."""

from __future__ import annotations

import json
from pathlib import Path

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.merging.mergeability import Mergeability
from mixmerge.reporting import tables


def merged_over_seeds(name: str, root: Path) -> Mergeability | None:
    """Merge `name`'s mergeability, its replicates averaged; None where it was not measured."""
    report = paths.merge_report(name, root)
    found = json.loads(report.read_text()).get("mergeability") if report.is_file() else None
    if not found:
        return None
    return Mergeability.average([Mergeability.from_json(seed) for seed in found.values()])


def section(params: StudyConfig, root: Path) -> tuple[dict, str]:
    """Every merge's mergeability (the study's merges, then the points searches chose), for
    the summary, and its Markdown ("" when none was measured)."""
    names = list(params.merges) + [
        paths.chosen_merge(search, point)
        for search in params.searches
        for point in paths.CHOSEN_POINTS
    ]
    measured = {name: merged_over_seeds(name, root) for name in names}
    measured = {name: found for name, found in measured.items() if found is not None}
    if not measured:
        return {}, ""
    objectives = sorted({o for found in measured.values() for o in found.by_objective()})
    data, rows = {}, []
    for name, found in measured.items():
        own, middle = found.merged, found.middle()
        against = _mean([own[g] - middle[g] for g in middle]) if own else None
        data[name] = {
            "barrier": found.barrier,
            "barrier_by_language": found.by_language(),
            "barrier_by_objective": found.by_objective(),
            "connected": found.connected(),
            "edge_kept_by_objective": found.edge_by_objective(),
            "relative_norms": found.relative_norms,
            "cosines": found.cosines,
            "merged_minus_middle": against,
            "reading": found.reading(),
        }
        worst = {o: _worst(found, o) for o in objectives}
        kept = found.edge_by_objective()
        rows.append([
            f"`merge/{name}`",
            ", ".join(tables.number(v, digits=3) for v in found.relative_norms.values()) or "n/a",
            ", ".join(tables.number(v, digits=3) for v in found.cosines.values()) or "n/a",
            *(worst[o] for o in objectives),
            *(tables.share(kept.get(o)) for o in objectives),
            tables.number(against, signed=True, digits=3),
            found.reading(),
        ])  # fmt: skip
    settings = params.mergeability
    split = next(iter(measured.values())).split
    intro = (
        "Whether each merge's models can be merged at all. Along the straight path between "
        "them (for more than two, from their average to each) the loss of the "
        f"{split} answers, in nats per token, per objective and language, at α in "
        f"{{{', '.join(f'{a:g}' for a in settings.alphas)}}}; the barrier is the path's "
        "largest rise above the line between its ends (Frankle et al., 2020), on the path "
        "averaged over the seeds' replicates; the table gives each objective's worst language. "
        "Edge kept: the share of the best model's advantage over the worst on an objective "
        "that the models' middle (the path's midpoint, or the average of more than two) keeps, "
        "in its worst language; fine-tunes for different skills can be connected and still "
        "lose most of each edge at the middle. "
        f"A path whose barrier is within {settings.tolerance:.0%} of its ends' loss reads as "
        "linearly connected: merges keep both parents' skills where fine-tunes stay in their "
        "base's basin (Yadav et al., 2024). ‖τ‖/‖θ‖ is each task vector's size against the "
        "model it is measured from (the merge's base, else the study's). Merged − middle: the "
        "merged model's loss less the middle's, averaged over objectives and languages: 0 for "
        "a Linear merge at equal weights, below 0 where a method does better than averaging "
        "(docs/mergeability.md)."
    )
    header = [
        "merge", "‖τ‖/‖θ‖", "cosine", *(f"barrier, {o}" for o in objectives),
        *(f"edge kept, {o}" for o in objectives), "merged − middle", "reading",
    ]  # fmt: skip
    return data, "\n".join([intro, "", tables.markdown(header, rows)])


def _worst(found: Mergeability, objective: str) -> str:
    """An objective's highest barrier and its language (`0.012 (hi)`)."""
    groups = {g: b for g, b in found.barrier.items() if g.partition("/")[0] == objective}
    if not groups:
        return "n/a"
    group = max(groups, key=groups.get)
    return f"{groups[group]:.3f} ({group.partition('/')[2]})"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
