"""Steps as SLURM batch jobs, ordered by SLURM's own dependencies.

Every step is submitted at once with `--dependency=afterok:<the jobs it needs>` and
`--kill-on-invalid-dep=yes`: SLURM starts a job when the jobs it needs have ended well and
cancels it when one of them failed, so nothing of ours decides what runs when, and the jobs go
on when the driver stops. A job's name (`mixmerge:<stage>`, or `mixmerge:exp-<name>` for an
experiment of a sweep) and working directory find it again: a later `mixmerge run` attaches to
the jobs still pending or running instead of submitting them twice. Jobs are requeueable: a
preempted or requeued training job starts again and resumes from its checkpoint.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mixmerge.cluster import jobs as job_files
from mixmerge.cluster.executor import FINAL, Executor, State, Status
from mixmerge.cluster.plan import Step
from mixmerge.core.errors import StageError

# The jobs of the last run, submitted or attached to, by step: for `mixmerge run --status`.
JOBS = job_files.LOGS / "jobs.json"
# squeue's states of a job that has not ended yet.
_ACTIVE = {
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED",
    "REQUEUE_HOLD", "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT",
}  # fmt: skip
_ENDED_WELL = {"COMPLETED"}
_CANCELLED = {"CANCELLED", "DEADLINE", "PREEMPTED"}


class SlurmExecutor(Executor):
    interval = 2.0  # a look asks squeue once

    def start(self, steps: list[Step]) -> None:
        self.ended: dict[str, Status] = {}
        self.names = [step.name for step in steps]
        attached = active_jobs(self.root)
        self.attached = {name: attached[name] for name in self.names if name in attached}
        self.job_ids: dict[str, str] = dict(self.attached)
        _record(self.root, self.job_ids, anew=True)
        for step in steps:
            if step.name in self.job_ids:
                continue
            job = self.cluster.covering(step.stages)
            script = job_files.write_script(self.root, step, job, batch=True)
            files = job_files.files(self.root, step.name)
            files.log.write_text("")
            files.state.unlink(missing_ok=True)
            needs = [self.job_ids[need] for need in step.needs]
            command = ["sbatch", "--parsable", "--kill-on-invalid-dep=yes"]
            if needs:
                command.append(f"--dependency=afterok:{':'.join(needs)}")
            self.job_ids[step.name] = _call([*command, str(script)]).split(";")[0]
            _record(self.root, {step.name: self.job_ids[step.name]})  # as each is submitted

    def poll(self) -> dict[str, Status]:
        going = {s: self.job_ids[s] for s in self.names if s not in self.ended}
        now = job_status(self.root, going) if going else {}
        self.ended.update({s: status for s, status in now.items() if status.state in FINAL})
        return {name: self.ended.get(name) or now[name] for name in self.names}

    def interrupt(self) -> str:
        return (
            "the submitted jobs go on; `mixmerge run --status` reports on them, "
            "`mixmerge run --cancel` stops them"
        )


def job_status(root: Path, job_ids: dict[str, str]) -> dict[str, Status]:
    """Where each step's job stands: squeue while it is queued or running, then the state
    its script recorded, or what SLURM says of a job that ended without recording one."""
    queue = _queue(root)
    status = {}
    for name, job in job_ids.items():
        recorded = job_files.read_state(root, name)
        mine = recorded if recorded is not None and recorded.job == job else None
        if job in queue:
            state, reason = queue[job][1:3]
            if state in ("RUNNING", "COMPLETING") and mine is not None:
                status[name] = Status(State.RUNNING, mine.started, job=job)
            else:  # a requeued job waits as State.PENDING, a starting one as CONFIGURING
                note = reason if reason not in ("None", "") else state.lower()
                status[name] = Status(State.PENDING, job=job, note=note)
        elif mine is not None and mine.state in (State.DONE, State.FAILED):
            status[name] = Status(State(mine.state), mine.started, mine.ended, job=job)
        else:
            status[name] = _ended(job, mine)
    return status


def _ended(job: str, mine) -> Status:
    """A job gone from the queue that recorded no end: SLURM's word for how it ended."""
    shown = subprocess.run(
        ["scontrol", "show", "job", "--oneliner", job], capture_output=True, text=True
    )
    fields = dict(item.split("=", 1) for item in shown.stdout.split() if "=" in item)
    state = fields.get("JobState", "")
    started = mine.started if mine else None
    if state in _ENDED_WELL:
        return Status(State.DONE, started, job=job)
    if state in _CANCELLED or not state:
        reason = fields.get("Reason", "")
        note = (
            "a stage it needs failed"
            if reason == "DependencyNeverSatisfied"
            else (reason.lower() if reason and reason != "None" else "gone from SLURM")
        )
        return Status(State.CANCELLED, started, job=job, note=note)
    return Status(State.FAILED, started, job=job, note=state.lower())


def active_jobs(root: Path) -> dict[str, str]:
    """The job of each step whose job is queued or running in this workspace, by step."""
    return {
        name.removeprefix(job_files.JOB_PREFIX): job
        for job, (name, state, _) in _queue(root).items()
        if state in _ACTIVE
    }


def cancel(root: Path) -> list[str]:
    """Cancel every queued or running job of this workspace; the steps they ran."""
    jobs = active_jobs(root)
    if jobs:
        _call(["scancel", *jobs.values()])
    return sorted(jobs)


def recorded_jobs(root: Path) -> dict[str, str]:
    try:
        return json.loads((root / JOBS).read_text())
    except (OSError, ValueError):
        return {}


def _record(root: Path, submitted: dict[str, str], anew: bool = False) -> None:
    """Add jobs to this run's record, or (`anew`) start the record of a new run with them."""
    path = root / JOBS
    path.parent.mkdir(parents=True, exist_ok=True)
    jobs = {**({} if anew else recorded_jobs(root)), **submitted}
    path.with_suffix(".tmp").write_text(json.dumps(jobs, indent=1) + "\n")
    path.with_suffix(".tmp").replace(path)


def _queue(root: Path) -> dict[str, tuple[str, str, str]]:
    """This workspace's mixmerge jobs that SLURM still lists: id -> (name, state, reason)."""
    listed = _call(["squeue", "--me", "--noheader", "--format=%i|%j|%T|%r|%Z"])
    queue = {}
    for line in listed.splitlines():
        job, name, state, reason, folder = line.split("|", 4)
        if name.startswith(job_files.JOB_PREFIX) and Path(folder) == root:
            queue[job] = (name, state, reason)
    return queue


def _call(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise StageError(f"`{command[0]}` not found: is this a SLURM login node?") from None
    except subprocess.CalledProcessError as error:
        raise StageError(f"{' '.join(command[:2])}: {error.stderr.strip()}") from None
    return done.stdout.strip()
