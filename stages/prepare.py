"""Stage `prepare`: read every data source and write train, eval and warm-up records per
language and objective, the pretraining corpus, and a report of what was kept and skipped."""

from __future__ import annotations

from pathlib import Path

import typer
from mixmerge.stages.commands import PARAMS, ParamsFile, load, run_stage

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.io import atomic_path, remove, write_json
from mixmerge.data.preparation import prepare_records
from mixmerge.data.prepared import write_prepared
from mixmerge.data.sources import named_files
from mixmerge.inputs import link_inputs


def run(params: StudyConfig, root: Path = paths.ROOT) -> dict:
    # A failure below must not leave the previous run's records looking current.
    for output in outputs("prepare"):
        remove(root / output)
    link_inputs("prepare", named_files(params.data.sources, root), root)
    splits, corpus, report = prepare_records(params)
    write_prepared(splits, corpus, root / paths.PREPARED)
    with atomic_path(root / paths.PREPARE_REPORT) as tmp:
        write_json(tmp, report)
    return report


def outputs(stage: str) -> list[Path]:
    """What `prepare` writes: its outs, metrics and plots, as dvc.yaml declares them."""
    return [paths.PREPARED, paths.PREPARE_REPORT]


# --- the command -----------------------------------------------------------------------------


def command(params: ParamsFile = PARAMS) -> None:
    """Read every data source into train, eval and warm-up records per language and objective.

    Writes data/prepared/ and reports/prepare.json (rows kept, skipped and why).
    """
    loaded = load(params)
    report = run_stage(run, loaded)
    for split, per_language in report["counts"].items():
        total = sum(sum(c.values()) for c in per_language.values())
        typer.echo(f"{split}: {total} records")


COMMANDS = {"prepare": command}
