"""One step as a job: the script that runs it through DVC, its log, and the state it reports.

Every executor runs the same script (`logs/<step>.sh`), on this machine or as a SLURM batch
job: it records that the step started, runs its command (for a stage,
`dvc --wait-for-lock repro --single-item <stage>`) and records how it ended, in
`logs/<step>.state.json`. DVC releases its repository lock while
a stage's command runs, so several such jobs share one workspace; each waits for the lock only
while DVC checks and commits.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from mixmerge.cluster.plan import Step
from mixmerge.config.cluster import JobResources

LOGS = Path("logs")
# A job's name on the cluster: with the workspace it runs in, it finds the job again.
JOB_PREFIX = "mixmerge:"


@dataclass(frozen=True)
class JobFiles:
    script: Path
    log: Path
    state: Path


def files(root: Path, name: str) -> JobFiles:
    folder = root / LOGS
    return JobFiles(folder / f"{name}.sh", folder / f"{name}.log", folder / f"{name}.state.json")


@dataclass(frozen=True)
class JobState:
    """What a job's script last recorded: `running`, `done` or `failed`."""

    state: str
    started: float
    ended: float | None = None
    code: int | None = None
    job: str = ""
    host: str = ""


def read_state(root: Path, name: str) -> JobState | None:
    try:
        return JobState(**json.loads(files(root, name).state.read_text()))
    except (OSError, ValueError, TypeError):
        return None  # not started, or cut off while written: the next write completes it


def sbatch_options(name: str, root: Path, job: JobResources) -> list[str]:
    options = [
        f"--job-name={JOB_PREFIX}{name}",
        f"--output={files(root, name).log}",
        "--open-mode=append",  # a requeued job appends to what it wrote before
        f"--chdir={root}",
        # a training job preempted or requeued starts again and resumes from its checkpoint
        "--requeue",
        f"--nodes={job.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={job.cpus_per_task}",
        f"--mem={job.memory}",
        f"--time={job.time}",
    ]
    if job.gpus_per_node:
        options.append(f"--gpus-per-node={job.gpus_per_node}")
    if job.partition:
        options.append(f"--partition={job.partition}")
    if job.account:
        options.append(f"--account={job.account}")
    return options + list(job.sbatch)


def write_script(root: Path, step: Step, job: JobResources, *, batch: bool) -> Path:
    """Write the step's job script; `batch` adds the `#SBATCH` lines and runs every stage in
    its own process (a warm worker would live outside the job's allocation)."""
    paths = files(root, step.name)
    paths.script.parent.mkdir(parents=True, exist_ok=True)
    record = (
        "record() {  # record <state> <ended> <exit code>\n"
        '    printf \'{"state": "%s", "started": %s, "ended": %s, "code": %s, "job": "%s", '
        '"host": "%s"}\\n\' \\\n'
        '        "$1" "$started" "$2" "$3" "${SLURM_JOB_ID:-}" "$(hostname)" > "$state.tmp"\n'
        '    mv "$state.tmp" "$state"\n'
        "}"
    )
    lines = ["#!/usr/bin/env bash"]
    if batch:
        lines += [f"#SBATCH {option}" for option in sbatch_options(step.name, root, job)]
    lines += [
        f"# {step.name} of the study in {root}, through DVC (written by `mixmerge run`).",
        "set -u",
        "export PYTHONUNBUFFERED=1  # a job killed by the scheduler keeps all it printed",
        *job.setup,
        *(
            ["export MIXMERGE_NO_WORKER=1", 'export OMP_NUM_THREADS="$SLURM_CPUS_PER_TASK"']
            if batch
            else []
        ),
        f"cd {shlex.quote(str(root))}",
        f"state={shlex.quote(str(paths.state))}",
        record,
        "started=$(date +%s)",
        "record running null null",
        # a job killed while its DVC rewrote the stage files' lock record leaves it torn
        f"{shlex.quote(sys.executable)} -m mixmerge.cluster.rwlock .",
        shlex.join(step.argv),
        "code=$?",
        'if [ "$code" = 0 ]; then outcome=done; else outcome=failed; fi',
        'record "$outcome" "$(date +%s)" "$code"',
        'exit "$code"',
    ]
    paths.script.write_text("\n".join(lines) + "\n")
    os.chmod(paths.script, 0o755)
    return paths.script
