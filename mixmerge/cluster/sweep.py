"""A sweep through `mixmerge run -S`: every point of a params grid as one DVC experiment.

The grid is read as `dvc exp run --queue -S` reads it (DVC's own Hydra sweep syntax:
`merges.sft_linear.models.1.weight=0.2,0.5,0.8`, several `-S` for their product), and each point
runs as `dvc exp run --temp`, side by side here or as one SLURM job each. An experiment runs in
a copy of the workspace in which DVC restores every cached output, so it runs only the stages
its params reach and the stages after them: a sweep of merge weights costs its merges, their
evaluations and the report. Each lands in `dvc exp show` under its name, and a point whose
experiment already exists on this commit is not run again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from mixmerge.cluster.plan import Step, reached
from mixmerge.core.errors import StageError

# A job of the run is named after its experiment with this in front (logs/exp-<name>.log).
PREFIX = "exp-"


def points(settings: Sequence[str]) -> list[list[str]]:
    """Each point of the grid `settings` spans, as the `-S` overrides that set it."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import get_hydra_sweeps
    from hydra.errors import OverrideParseException

    try:
        grid = get_hydra_sweeps(to_path_overrides(settings))
    except (OverrideParseException, InvalidArgumentError) as error:
        raise StageError(f"-S {' '.join(settings)}: {error}") from None
    return [
        [override if file == "params.yaml" else f"{file}:{override}"
         for file, overrides in point.items() for override in overrides]
        for point in grid
    ]  # fmt: skip


def names(grid: list[list[str]], prefix: str | None) -> list[str]:
    """Each point's experiment name: `<prefix>-<i>` as DVC names a queued sweep, or, without a
    prefix, what it sets (`weight-0.2`)."""
    if prefix:
        return [f"{prefix}-{i}" for i in range(1, len(grid) + 1)]
    named = ["-".join(_readable(override) for override in point) for point in grid]
    if len(set(named)) < len(named):  # keys that end alike: number the points instead
        return [f"sweep-{i}" for i in range(1, len(grid) + 1)]
    return named


def steps(
    root: Path, targets: Sequence[str], settings: Sequence[str], prefix: str | None
) -> tuple[list[Step], list[str]]:
    """The grid's experiments still to run, each a step running the stages it reaches, and
    the names of those that already exist on this commit."""
    grid = points(settings)
    done = _existing(root)
    # every point sets the same keys, so every experiment reaches the same stages
    runs = tuple(reached(root, grid[0], targets))
    planned, skipped = [], []
    for name, point in zip(names(grid, prefix), grid, strict=True):
        if name in done:
            skipped.append(name)
            continue
        command = ["dvc", "--wait-for-lock", "exp", "run", "--temp", "--name", name]
        for override in point:
            command += ["-S", override]
        planned.append(Step(f"{PREFIX}{name}", command=(*command, *targets), runs=runs))
    return planned, skipped


def _readable(override: str) -> str:
    key, _, value = override.partition("=")
    last = key.rpartition(":")[2].lstrip("+~").split(".")[-1]
    # what a git reference (an experiment's home) may hold
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{last}-{value}" if value else last).strip("-.")


def _existing(root: Path) -> set[str]:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {name for found in repo.experiments.ls().values() for name, _ in found}
