"""Stage `merge@<merge>`: merge models tensor by tensor into a new model folder, once per
training seed (the replicates of that seed), each with its resolved recipe (merge.yaml), the
same merge for mergekit (mergekit.yaml), and how its task vectors interfere, per layer
(diagnostics.json, unless the merge's `diagnostics` are off), and whether its models can be
merged at all (in reports/merges/<merge>.json, unless params' `mergeability` is off)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from mixmerge.stages.commands import PARAMS, ParamsFile, run_named

from mixmerge import paths
from mixmerge.config import StudyConfig


def run(
    params: StudyConfig, name: str, root: Path = paths.ROOT, max_shard_bytes: int = 5 * 10**9
) -> dict:
    """Every replicate of merge `name`, and its diagnostics by seed (reports/merges/)."""
    from mixmerge.merging.mergeability import probe  # torch: only once a stage runs
    from mixmerge.merging.replicates import write_merge

    return write_merge(
        name, params.merges[name], params.seeds, root, max_shard_bytes, probe(params, root)
    )


def outputs(stage: str) -> list[Path]:
    """What `merge@<name>` writes: its outs, metrics and plots, as dvc.yaml declares them."""
    return paths.merge_outputs(stage.partition("@")[2])


# --- the command -----------------------------------------------------------------------------

MergeName = Annotated[str, typer.Argument(help="A merge named under `merges` in params.")]


def command(name: MergeName, params: ParamsFile = PARAMS) -> None:
    """Merge models tensor by tensor (linear, slerp, task_arithmetic, ties, dare_linear,
    dare_ties, breadcrumbs...) with mergekit's semantics, in bounded memory, once per seed of
    `seeds` (the replicates of that seed).

    Writes models/merge/NAME/seed-S (the model, merge.yaml, mergekit.yaml, diagnostics.json) and
    reports/merges/NAME.json (how the task vectors interfere, overall, and whether the models
    can be merged at all: the loss along the path between them, by seed).
    """
    summary = run_named(run, params, "merges", "merge", name)
    typer.echo(f"models/merge/{name}: merged")
    for replicate, figures in summary["seeds"].items():
        said = [f"sign conflicts {figures['sign_conflicts']:.3f}"] if figures else []
        found = summary.get("mergeability", {}).get(replicate)
        said += [found["reading"]] if found else []
        if said:
            typer.echo(f"  {replicate}: {'; '.join(said)}")


COMMANDS = {"merge": command}
