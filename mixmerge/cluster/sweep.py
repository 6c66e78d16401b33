"""A sweep through `mixmerge run -S`: every point of a params grid as one DVC experiment.

The grid is read as `dvc exp run --queue -S` reads it (DVC's own Hydra sweep syntax:
`merges.sft_linear.models.1.weight=0.2,0.5,0.8`, several `-S` for their product), and each point
runs as `dvc exp run --temp`, side by side here or as one SLURM job each. An experiment runs in
a copy of the workspace in which DVC restores every cached output, so it runs only the stages
its params reach and the stages after them: a sweep of merge weights costs its merges, their
evaluations and the report. Each lands in `dvc exp show` under its name, and a point whose
experiment already exists on this commit, with the values it sets, is not run again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from mixmerge.cluster.plan import Step, override_key, reached
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
    the names of those that already exist on this commit. An experiment of a point's name that
    set other values is refused: rerunning the sweep must not take it for this point."""
    grid = points(settings)
    existing = _existing(root, {override_key(override)[0] for override in grid[0]})
    # every point sets the same keys, so every experiment reaches the same stages
    runs = tuple(reached(root, grid[0], targets))
    planned, skipped = [], []
    for name, point in zip(names(grid, prefix), grid, strict=True):
        if name in existing:
            other = [override for override in point if not _holds(existing[name], override)]
            if other:
                raise StageError(
                    f"the experiment {name} exists on this commit and does not set "
                    f"{', '.join(other)}: name the sweep otherwise (--name), or remove it "
                    f"(`dvc exp remove {name}`)"
                )
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


def _existing(root: Path, files: set[str]) -> dict[str, dict[str, dict]]:
    """The experiments of this commit, by name, each with the params `files` it ran with."""
    from dvc.repo import Repo

    def load(fs, file: str) -> dict:
        try:
            return yaml.safe_load(fs.open(file).read()) or {}
        except (OSError, yaml.YAMLError):
            return {}

    with Repo(str(root)) as repo:
        listed = [found for each in repo.experiments.ls().values() for found in each]
        return {
            name: {file: load(repo.scm.get_fs(sha), file) for file in files} for name, sha in listed
        }


def _holds(params: dict[str, dict], override: str) -> bool:
    """Whether the params an experiment ran with hold what `override` sets: `key=value` has
    that value, `~key` is gone."""
    file, key = override_key(override)
    node = params[file]
    try:
        for part in key.lstrip("+~").split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
    except (KeyError, IndexError, ValueError, TypeError):
        return key.startswith("~")
    return not key.startswith("~") and node == yaml.safe_load(override.partition("=")[2])
