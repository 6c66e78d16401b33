"""Stage `search@<name>`: score every point of a merge recipe's space on the dev split, write
the trials, the Pareto front of harm change against win-rate and a plot of them, and merge the
points it chooses, for every training seed, as the merges `<name>-best` and `<name>-knee`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from mixmerge.stages.commands import PARAMS, ParamsFile, run_named

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.io import atomic_path, write_json
from mixmerge.evaluation.evaluate import Judges

if TYPE_CHECKING:
    from mixmerge.search.runner import SearchReport


def run(params: StudyConfig, name: str, root: Path = paths.ROOT) -> SearchReport:
    from mixmerge.merging.replicates import write_merge  # torch: only once a stage runs
    from mixmerge.search.runner import Search

    judges = Judges.of(params.evaluation, params.trust_remote_code)
    trials_file = root / paths.SEARCHES / name / "trials.jsonl"
    search = Search(params, name, root, judges, trials_file)
    report = search.run()
    for point, trial in report["chosen"].items():
        merge = search.merge_at(trial["point"], diagnostics=True)
        write_merge(
            paths.chosen_merge(name, point), merge, params.seeds, root,
            params.searches[name].max_shard_bytes, search.probe,
        )  # fmt: skip
    on_front = set(report["front"])
    plot = [
        {"name": f"trial {t['trial']}", **t["dev"]["average"], "front": t["trial"] in on_front}
        for t in report["trials"]
        if "dev" in t
    ] + [
        {"name": ref, **figures["average"], "front": False}
        for ref, figures in report["references"].items()
    ]
    with atomic_path(root / paths.SEARCH_REPORTS / name) as tmp:
        write_json(tmp / "trials.json", plot)
    with atomic_path(root / paths.SEARCH_REPORTS / f"{name}.json") as tmp:
        write_json(tmp, report)
    return report


def outputs(stage: str) -> list[Path]:
    """What `search@<name>` writes: its outs, metrics and plots, as dvc.yaml declares them."""
    name = stage.partition("@")[2]
    chosen = [paths.chosen_merge(name, point) for point in paths.CHOSEN_POINTS]
    return [
        paths.SEARCHES / name, paths.SEARCH_REPORTS / f"{name}.json", paths.SEARCH_REPORTS / name,
        *(path for merge in chosen for path in paths.merge_outputs(merge)),
    ]  # fmt: skip


# --- the command -----------------------------------------------------------------------------

SearchName = Annotated[str, typer.Argument(help="A search named under `searches` in params.")]


def command(name: SearchName, params: ParamsFile = PARAMS) -> None:
    """Score every point of a merge recipe's space on the dev split (the paper's grid of
    weights, or your own): each merged by the engine from the first training seed's models,
    its answers to the dev prompts judged against the base's. Resumes where a killed search
    stopped. Then merges the two points it chooses from the front, for every training seed:
    `best` (the highest dev win-rate whose dev harm is no worse than `choose_against`'s) and
    `knee`.

    Writes searches/NAME/ (the trials, kept to resume), reports/searches/NAME.json (every
    trial's dev figures per language, the Pareto front of harm change against win-rate, the
    chosen points), reports/searches/NAME/trials.json (a DVC plot), and the merges
    models/merge/NAME-best and NAME-knee with their reports/merges/ diagnostics. Judge them on
    eval with `mixmerge evaluate merge/NAME-best`.
    """
    # a search judges as evaluation does
    report = run_named(run, params, "searches", "search", name, "evaluation")
    picks = ", ".join(f"{point} trial {t['trial']}" for point, t in report["chosen"].items())
    typer.echo(
        f"{name}: {report['scored']} merges scored on dev ({report['same_merges']} points the "
        f"same merge as an earlier one's, {report['skipped']} refused); front: trials "
        f"{report['front']}; chosen: {picks}"
    )


COMMANDS = {"search": command}
