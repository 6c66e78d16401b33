"""Stage `search@<name>`: score every point of a merge recipe's space on the dev split, write
the trials, the Pareto front of harm change against win-rate and a plot of them, and merge the
points it chooses, for every training seed, as the merges `<name>-best` and `<name>-knee`."""

from __future__ import annotations

from pathlib import Path

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.errors import StageError
from mixmerge.core.io import atomic_path, write_json
from mixmerge.evaluation.evaluate import Judges
from mixmerge.merging.replicates import write_merge
from mixmerge.search.runner import Search


def run(params: StudyConfig, name: str, root: Path = paths.ROOT) -> dict:
    if params.evaluation is None:
        raise StageError("params have no `evaluation` section: a search judges like one")
    judges = Judges.of(params.evaluation, params.trust_remote_code)
    trials_file = root / paths.SEARCHES / name / "trials.jsonl"
    search = Search(params, name, root, judges, trials_file)
    report = search.run()
    for point, trial in report["chosen"].items():
        merge = search.recipe(trial["point"], diagnostics=True)
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
