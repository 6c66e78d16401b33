"""`mixmerge run`: what `dvc repro` would run, with independent stages at once.

DVC stays the DAG, the cache and the record: the plan is read from DVC's graph
(`mixmerge.cluster.plan`), and every stage runs through `dvc repro --single-item`, so that
`dvc.lock` ends as a serial `dvc repro` leaves it. An executor (`EXECUTORS`) decides where the
stages run: side by side on this machine (`local`), or as SLURM jobs ordered by SLURM's own
dependencies (`slurm`).
"""

from mixmerge.cluster.driver import EXECUTORS, RunOutcome, cancel, report, run

__all__ = ["EXECUTORS", "RunOutcome", "cancel", "report", "run"]
