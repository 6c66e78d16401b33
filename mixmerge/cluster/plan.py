"""What `dvc repro` would run, as steps that wait for one another.

DVC stays the one DAG: the plan is read from DVC's own graph and its own check of what changed,
and every step is then run by `dvc repro --single-item`, which decides again, under DVC's locks,
whether the stage still has anything to do.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Step:
    """A stage that must run (DVC's address, `sft@mix0`) and the steps it waits for."""

    stage: str
    needs: tuple[str, ...]


def plan(root: Path, targets: Sequence[str] = ()) -> list[Step]:
    """The stages `dvc repro [targets]` would run in `root`, each after the steps it needs,
    in an order DVC could run them one after another.

    A stage runs when DVC finds it changed or running, or when a stage it depends on runs: that
    one may change its inputs (if its outputs come out the same, DVC skips the dependent when
    its step comes, at the cost of a check). A frozen stage never runs, as under `dvc repro`.
    """
    from dvc.repo import Repo
    from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro

    quiet = logging.getLogger("dvc")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # DVC says why each stage changed; the plan says it once
    try:
        with Repo(str(root)) as repo, repo.lock:
            graph = get_active_graph(repo.index.graph)
            chosen = collect_stages(repo, list(targets) or [str(root / "dvc.yaml")])
            steps: dict = {}
            for stage in plan_repro(graph, chosen):
                # DVC's graph points from a stage to the stages it depends on.
                upstream = [u for u in graph.successors(stage) if u in steps]
                if not stage.frozen and (upstream or _changed(stage)):
                    steps[stage] = Step(
                        _address(stage, root), tuple(_address(u, root) for u in upstream)
                    )
            return list(steps.values())
    finally:
        quiet.setLevel(level)


def _changed(stage) -> bool:
    from dvc.lock import LockError

    try:
        return stage.changed()
    except LockError:  # another process writes its outputs now: a job running it, or about to
        return True


def _address(stage, root: Path) -> str:
    """The stage as `dvc repro` takes it in `root`: its name, with its file where that is not
    the root's dvc.yaml (DVC's own addressing is relative to the working directory)."""
    dvcfile = Path(stage.dvcfile.path).resolve()
    if dvcfile == root.resolve() / "dvc.yaml":
        return stage.name
    return f"{dvcfile.relative_to(root.resolve())}:{stage.name}"
