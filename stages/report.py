"""Stage `report`: who wins on this run, mixing or merging, then the paper's tables side by side
with the paper, with intervals, figures and a verdict on each headline claim
(reports/report.html, reports/report.md, reports/summary.json)."""

from __future__ import annotations

from pathlib import Path

import typer
from mixmerge.stages.commands import PARAMS, ParamsFile, load, run_stage

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.errors import StageError
from mixmerge.reporting.document import write_report


def run(params: StudyConfig, root: Path = paths.ROOT) -> dict:
    if params.report is None or params.evaluation is None:
        raise StageError("params have no `report` or no `evaluation` section")
    return write_report(params, root)


def outputs(stage: str) -> list[Path]:
    """What `report` writes: its outs, metrics and plots, as dvc.yaml declares them."""
    return [paths.FIGURES, paths.PLOTS, paths.REPORT, paths.REPORT_HTML, paths.SUMMARY]


# --- the command -----------------------------------------------------------------------------


def command(params: ParamsFile = PARAMS) -> None:
    """Write the study's report: who wins, mixing or merging, on each axis in each phase; the
    paper's tables on this run (mixing against merging per phase, language-based merges,
    merge order, per language, over-refusal, the weight ablation) with replication intervals,
    figures, and a verdict on each of the paper's claims.

    Writes reports/report.html (one page that opens offline), reports/report.md,
    reports/summary.json (metrics), reports/figures/ (PNG and SVG) and reports/plots/ (DVC
    plots).
    """
    loaded = load(params, "report", "evaluation")
    summary = run_stage(run, loaded)
    typer.echo("The answer, in reports/report.html (and report.md):")
    for line in summary["answer_lines"]:
        typer.echo(f"  {line}")
    typer.echo(
        f"{summary['claims_supported']} of {summary['claims_tested']} tested claims of the "
        "paper supported"
    )


COMMANDS = {"report": command}
