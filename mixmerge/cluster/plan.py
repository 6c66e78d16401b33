"""What `dvc repro` would run, as steps that wait for one another.

DVC stays the one DAG: the plan is read from DVC's own graph and its own check of what changed,
and every step is then run by `dvc repro --single-item`, which decides again, under DVC's locks,
whether the stage still has anything to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Step:
    """One job of a run and the steps it waits for: a stage (DVC's address, `sft@mix0`), run
    by `dvc repro --single-item`, or (a sweep, `mixmerge.cluster.sweep`) a command that runs
    the stages `runs`."""

    name: str
    needs: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()

    @property
    def argv(self) -> tuple[str, ...]:
        return self.command or ("dvc", "--wait-for-lock", "repro", "--single-item", self.name)

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages the step's job runs: what its resources must cover."""
        return self.runs or (self.name,)


def plan(root: Path, targets: Sequence[str] = ()) -> list[Step]:
    """The stages `dvc repro [targets]` would run in `root`, each after the steps it needs,
    in an order DVC could run them one after another.

    A stage runs when DVC finds it changed or running, or when a stage it depends on runs: that
    one may change its inputs (if its outputs come out the same, DVC skips the dependent when
    its step comes, at the cost of a check). A frozen stage never runs, as under `dvc repro`.
    """
    with _graph(root, targets) as stages:
        return stages(lambda stage: False)


def reached(root: Path, settings: Sequence[str], targets: Sequence[str] = ()) -> list[str]:
    """The stages that `dvc repro [targets]` would run in `root` once the params `settings`
    (`-S` overrides, `merges.sft_linear.models.1.weight=0.3`) are set: those changed now, those
    whose params hold a key set, and every stage after them."""
    keys = [(file, key.lstrip("+~")) for file, key in map(override_key, settings)]

    def sets_a_param(stage) -> bool:
        from dvc.dependency.param import ParamsDependency

        for dep in stage.deps:
            if not isinstance(dep, ParamsDependency):
                continue
            held = dep.params or [""]  # none listed: the stage depends on the whole file
            for file, key in keys:
                if Path(dep.fs_path).resolve() == (root / file).resolve() and any(
                    _overlap(key, own) for own in held
                ):
                    return True
        return False

    with _graph(root, targets) as stages:
        return [step.name for step in stages(sets_a_param)]


@contextmanager
def _graph(root: Path, targets: Sequence[str]) -> Iterator[Callable]:
    """DVC's graph of `root`, open: yields the steps of `dvc repro [targets]` where a stage
    also counts as changed when `also(stage)` says so."""
    from dvc.repo import Repo
    from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro

    quiet = logging.getLogger("dvc")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # DVC says why each stage changed; the plan says it once
    try:
        with Repo(str(root)) as repo, repo.lock:
            graph = get_active_graph(repo.index.graph)
            chosen = collect_stages(repo, list(targets) or [str(root / "dvc.yaml")])

            def steps(also: Callable) -> list[Step]:
                found: dict = {}
                for stage in plan_repro(graph, chosen):
                    # DVC's graph points from a stage to the stages it depends on.
                    upstream = [u for u in graph.successors(stage) if u in found]
                    if not stage.frozen and (upstream or also(stage) or _changed(stage)):
                        found[stage] = Step(
                            _address(stage, root), tuple(_address(u, root) for u in upstream)
                        )
                return list(found.values())

            yield steps
    finally:
        quiet.setLevel(level)


def override_key(override: str) -> tuple[str, str]:
    """An override as `dvc exp run -S` takes it (`[file:]key=value`, `+key=…`, `~key`): its
    params file and key, with the `+` or `~` in front."""
    name = override.partition("=")[0]
    file, _, key = name.rpartition(":") if ":" in name else ("params.yaml", "", name)
    return file, key


def _overlap(key: str, held: str) -> bool:
    """Whether setting `key` changes the params `held` (a key, a table above it, or one inside
    it; the empty key is the whole file)."""
    return not held or key == held or key.startswith(f"{held}.") or held.startswith(f"{key}.")


def _changed(stage) -> bool:
    """DVC's `stage.changed()` without the read locks it takes on the stage's files: a plan
    only reads, and a job whose DVC went for those files at that moment would fail (DVC's
    stage locks do not wait). A stage a job writes now shows as changed, and is planned."""
    if stage.changed_stage() or stage.is_callback or stage.always_changed:
        return True
    return any(entry.status() for entry in (*stage.deps, *stage.outs))


def _address(stage, root: Path) -> str:
    """The stage as `dvc repro` takes it in `root`: its name, with its file where that is not
    the root's dvc.yaml (DVC's own addressing is relative to the working directory)."""
    dvcfile = Path(stage.dvcfile.path).resolve()
    if dvcfile == root.resolve() / "dvc.yaml":
        return stage.name
    return f"{dvcfile.relative_to(root.resolve())}:{stage.name}"
