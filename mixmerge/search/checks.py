"""What params validation checks of the searches before anything runs: spaces within their
budgets, points their merge method accepts, and dev prompts to score them on. No torch."""

from __future__ import annotations

from pydantic import ValidationError

from mixmerge import paths
from mixmerge.config.common import Problem, problem_of
from mixmerge.config.data import BuiltinSourceConfig
from mixmerge.config.merges import MergeConfig
from mixmerge.config.searches import SearchConfig
from mixmerge.config.study import StudyConfig
from mixmerge.merging.registry import merge_context
from mixmerge.search.space import filled, points, slots


def search_problems(params: StudyConfig) -> list[Problem]:
    """No merge may take the name of a search's chosen point. A search needs a space no larger
    than its budget, points its merge method accepts, and dev prompts to score them on,
    harmful and general, in every language."""
    problems = [
        Problem(
            f"merges.{name}",
            f"a merge's name may not end in {', '.join('-' + p for p in paths.CHOSEN_POINTS)}: "
            "`<search>-<point>` names a merge that `search@<search>` chooses",
        )
        for name in params.merges
        if paths.chosen_by(name)
    ]
    if not params.searches:
        return problems
    for name, search in params.searches.items():
        problems += _search_problems(params, f"searches.{name}", search)
    missing = _without_dev(params)
    if missing:
        problems.append(
            Problem(
                "searches",
                "searches score on the dev split, which has no prompts for "
                + "; ".join(
                    f"{code}: {', '.join(objectives)}" for code, objectives in missing.items()
                )
                + " (give the world `dev` sizes, or a source `dev_share`)",
            )
        )
    return problems


def _search_problems(params: StudyConfig, where: str, search: SearchConfig) -> list[Problem]:
    """One search's: a template with something to search, references of its merge's phase,
    a space its method and budget can search, and a point its merge method accepts."""
    try:
        found = slots(search.merge)
    except ValueError as error:
        return [Problem(f"{where}.merge", str(error))]
    if not found:
        return [Problem(f"{where}.merge", "nothing to search: no `{grid: ...}`")]
    problems = []
    phase = search.merge.get("stage")  # the params key keeps the paper's word
    strangers = [
        ref for ref in search.references if ref != paths.BASE and paths.parse(ref).kind != phase
    ]
    if strangers:
        problems.append(
            Problem(
                f"{where}.references",
                f"a {phase}-stage search is set against the base or {phase}/ models, not "
                + ", ".join(strangers),
            )
        )
    ranges = [slot.name for slot in found if slot.values is None]
    if search.method == "grid" and ranges:
        return problems + [
            Problem(
                f"{where}.merge",
                f"a grid searches grids; {', '.join(ranges)} is a range (for nsga2)",
            )
        ]
    if search.method == "nsga2" and search.trials <= search.population:
        problems.append(
            Problem(
                f"{where}.trials",
                f"NSGA-II breeds after a first population of {search.population}: give more "
                "trials, or a smaller `population`",
                search.trials,
            )
        )
    grid = points(found) if search.method == "grid" else [_midpoint(found)]
    if len(grid) > search.trials:
        problems.append(
            Problem(
                f"{where}.trials",
                f"the grid has {len(grid)} points, more than the budget",
                search.trials,
            )
        )
    return problems + _refused_everywhere(params, where, search, found, grid)


def _refused_everywhere(
    params: StudyConfig, where: str, search: SearchConfig, found, grid
) -> list[Problem]:
    """Why the merge method refuses the template at every point of `grid`, if it does. A point
    it refuses (weights that sum to zero) is skipped when the search runs; a template refused
    at every point (a parameter the method has not) is wrong."""
    first = None
    for point in grid:
        try:
            MergeConfig.model_validate(
                filled(search.merge, found, point), context=merge_context(params.model_refs)
            )
            return []
        except ValidationError as error:
            first = first or error
    if first is None:
        return []
    return [
        Problem(f"{where}.merge" + ("" if p.path == "<file>" else f".{p.path}"), p.message)
        for p in (problem_of(e, MergeConfig) for e in first.errors())
    ]


def _midpoint(found) -> dict[str, float]:
    """A point of every space: a grid's middle value, a range's middle."""
    return {
        slot.name: slot.values[len(slot.values) // 2]
        if slot.values is not None
        else (slot.low + slot.high) / 2
        for slot in found
    }


def _without_dev(params: StudyConfig) -> dict[str, list[str]]:
    """The harmful and general objectives each language has no dev prompt of."""
    covered: set[tuple[str, str]] = set()
    for source in params.data.sources.values():
        if isinstance(source, BuiltinSourceConfig):
            covered |= {
                (code, objective)
                for code in params.languages
                for objective in ("safety", "general")
                if getattr(source.dev, objective)
            }
        elif source.dev_share and source.use != "train":
            languages = source.languages or [getattr(source, "language", None)]
            codes = [c for c in languages if c] or params.languages
            covered |= {(code, source.objective) for code in codes}
    return {
        code: [o for o in ("safety", "general") if (code, o) not in covered]
        for code in params.languages
        if any((code, o) not in covered for o in ("safety", "general"))
    }
