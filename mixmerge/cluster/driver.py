"""The driver of `mixmerge run`: plan, start the steps with an executor, report each step as
its state changes, and sum up."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mixmerge.cluster import jobs as job_files
from mixmerge.cluster import slurm, sweep
from mixmerge.cluster.executor import FINAL, Executor, State, Status
from mixmerge.cluster.local import LocalExecutor
from mixmerge.cluster.plan import plan
from mixmerge.cluster.sharedfs import check_shared_filesystem
from mixmerge.config.cluster import ClusterConfig
from mixmerge.core.errors import StageError

EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "slurm": slurm.SlurmExecutor}
_LOCK = job_files.LOGS / "run.lock"


@dataclass
class RunOutcome:
    """How each planned step (a stage, or an experiment of a sweep) ended, or stands for a
    detached run."""

    status: dict[str, Status] = field(default_factory=dict)

    def steps(self, state: str) -> list[str]:
        return [name for name, status in self.status.items() if status.state == state]

    @property
    def ok(self) -> bool:
        return all(status.state == State.DONE for status in self.status.values())


def run(
    root: Path,
    targets: Sequence[str],
    cluster: ClusterConfig,
    executor: str = "local",
    jobs: int = 2,
    detach: bool = False,
    interval: float | None = None,
    say: Callable[[str], None] = print,
    settings: Sequence[str] = (),
    name: str | None = None,
) -> RunOutcome:
    """Run what `dvc repro [targets]` would run in `root`, with the executor named; with
    `settings` (`-S` overrides spanning a grid), run each point of the grid as a DVC experiment
    named `name-<i>` (`mixmerge.cluster.sweep`)."""
    root = root.resolve()
    with _run_lock(root):
        if executor == "slurm":
            for line in check_shared_filesystem(root):
                say(line)
        if settings:
            steps, existing = sweep.steps(root, targets, settings, name)
            for exp in existing:
                say(f"{'done':<9} {sweep.PREFIX + exp:<32} an experiment of this commit")
            what = "experiment"
        else:
            steps, what = plan(root, targets), "stage"
        if not steps:
            say("Every experiment of the sweep exists." if settings
                else "Data and pipelines are up to date: nothing to run.")  # fmt: skip
            return RunOutcome()
        where = f"{jobs} at once on this machine" if executor == "local" else "as SLURM jobs"
        say(f"mixmerge run: {_count(len(steps), what)} to run, {where}")
        if settings:
            say(f"each runs {', '.join(steps[0].runs) or 'what DVC finds changed'}")
        runner = EXECUTORS[executor](root, cluster, jobs)
        interval = interval or runner.interval
        began = time.time()
        try:
            runner.start(steps)
            if detach:
                status = runner.poll()
                for step, now in status.items():
                    say(_line(root, step, now, began))
                say("submitted; `mixmerge run --status` reports on the jobs")
                return RunOutcome(status)
            status = _watch(root, runner, interval, began, say)
        except KeyboardInterrupt:
            say(f"interrupted: {runner.interrupt()}")
            raise
        finally:
            runner.close()
    outcome = RunOutcome(status)
    say(_summary(root, outcome, what, time.time() - began))
    if settings and outcome.ok:
        say("`dvc exp show` compares them")
    return outcome


def report(root: Path, say: Callable[[str], None] = print) -> RunOutcome:
    """Where each job of the last SLURM submission in `root` stands, without waiting."""
    root = root.resolve()
    recorded = slurm.recorded_jobs(root)
    if not recorded:
        say("no SLURM jobs submitted from this workspace")
        return RunOutcome()
    status = slurm.job_status(root, recorded)
    for step, now in status.items():
        say(_line(root, step, now, None))
    outcome = RunOutcome(status)
    counts = ", ".join(
        f"{len(outcome.steps(state))} {state.value}"
        for state in (State.DONE, State.RUNNING, State.PENDING, State.FAILED, State.CANCELLED)
        if outcome.steps(state)
    )
    say(f"{len(status)} jobs: {counts}")
    return outcome


def cancel(root: Path, say: Callable[[str], None] = print) -> list[str]:
    names = slurm.cancel(root.resolve())
    say(f"cancelled {_count(len(names), 'job')}: {', '.join(names)}"
        if names else "no job of this workspace is queued or running")  # fmt: skip
    return names


def _watch(root, runner, interval, began, say) -> dict[str, Status]:
    shown: dict[str, tuple[str, str]] = {}
    while True:
        status = runner.poll()
        for name, now in status.items():
            if shown.get(name, (State.PENDING, "")) != (now.state, now.note):
                say(_line(root, name, now, began))
            shown[name] = (now.state, now.note)
        if all(now.state in FINAL for now in status.values()):
            return status
        time.sleep(interval)


def _line(root: Path, name: str, status: Status, began: float | None) -> str:
    clock = ""
    if began is not None:
        minutes, seconds = divmod(int(time.time() - began), 60)
        clock = f"[{minutes:3d}:{seconds:02d}] "
    took = ""
    if status.state in (State.DONE, State.FAILED) and status.started and status.ended:
        took = _duration(status.ended - status.started)
    log = job_files.files(root, name).log.relative_to(root)
    detail = {
        State.RUNNING: str(log),
        State.FAILED: f"{took}  see {log}",
        State.DONE: took,
        State.PENDING: status.note,
        State.CANCELLED: status.note,
    }[status.state]
    job = f"job {status.job}" if status.job else ""
    return f"{clock}{status.state.value:<9} {name:<32} {job:<10} {detail}".rstrip()


def _summary(root: Path, outcome: RunOutcome, what: str, seconds: float) -> str:
    counts = ", ".join(
        f"{len(outcome.steps(state))} {state.value}"
        for state in (State.DONE, State.FAILED, State.CANCELLED)
        if outcome.steps(state)
    )
    lines = [f"{_count(len(outcome.status), what)} in {_duration(seconds)}: {counts}"]
    for name in outcome.steps(State.FAILED):
        lines.append(f"failed: {name} (log: {job_files.files(root, name).log.relative_to(root)})")
    return "\n".join(lines)


def _count(number: int, what: str) -> str:
    return f"{number} {what}{'s' if number != 1 else ''}"


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


@contextmanager
def _run_lock(root: Path) -> Iterator[None]:
    """One driver per workspace at a time: a second refuses at once, naming the first."""
    path = root / _LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise StageError(
                f"another `mixmerge run` is running in this workspace ({holder}): wait for it "
                "to end, or stop it"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}\n")
        lock.flush()
        yield
