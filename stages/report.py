"""Stage `report`: the paper's tables on this run, side by side with the paper, with intervals,
figures and a verdict on each headline claim (reports/report.md, reports/summary.json)."""

from __future__ import annotations

from pathlib import Path

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.errors import StageError
from mixmerge.reporting.document import write_report


def run(params: StudyConfig, root: Path = paths.ROOT) -> dict:
    if params.report is None or params.evaluation is None:
        raise StageError("params have no `report` or no `evaluation` section")
    return write_report(params, root)
