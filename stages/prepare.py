"""Stage `prepare`: read every data source and write train, eval and warm-up records per
language and objective, the pretraining corpus, and a report of what was kept and skipped."""

from __future__ import annotations

from pathlib import Path

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.io import atomic_path, remove, write_json
from mixmerge.data.prepared import prepare_records, write_prepared


def run(params: StudyConfig, root: Path = paths.ROOT) -> dict:
    # A failure below must not leave the previous run's records looking current.
    for output in paths.stage_outputs("prepare"):
        remove(root / output)
    splits, corpus, report = prepare_records(params)
    write_prepared(splits, corpus, root / paths.PREPARED)
    with atomic_path(root / paths.PREPARE_REPORT) as tmp:
        write_json(tmp, report)
    return report
