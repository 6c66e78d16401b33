"""The `cluster` section: what each stage's job asks the scheduler for when `mixmerge run
--executor slurm` submits it (`mixmerge.cluster`).

`defaults` applies to every stage; `stages.<stage>` (a stage of dvc.yaml: `sft`,
`evaluate-merge`...) overrides it field by field, and its `sbatch` options and `setup` lines come
after the defaults' ones. Nothing here changes what a stage computes, so no stage depends on it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from mixmerge.config.common import Strict, domain_check
from mixmerge.core.suggest import did_you_mean

_MEMORY = re.compile(r"[1-9][0-9]*[KMGT]?")
# SLURM's time formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds.
_TIME = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}")
# What `mixmerge run` sets on every job itself: a params value would break its bookkeeping.
RESERVED_OPTIONS = (
    "--job-name", "-J", "--output", "-o", "--error", "-e", "--open-mode", "--dependency", "-d",
    "--chdir", "-D", "--parsable", "--kill-on-invalid-dep", "--requeue", "--no-requeue",
    "--wait", "-W",
)  # fmt: skip


def _memory(value: str) -> str:
    if not _MEMORY.fullmatch(value):
        raise PydanticCustomError(
            "memory", "memory is a whole number with an optional K, M, G or T suffix, e.g. 16G"
        )
    return value


def _time(value: str) -> str:
    if not _TIME.fullmatch(value):
        raise PydanticCustomError(
            "time", "a SLURM time limit: minutes, [days-]hours:minutes:seconds, e.g. 4:00:00"
        )
    return value


def _option(value: str) -> str:
    if not value.startswith("-"):
        raise PydanticCustomError("option", "an sbatch option starts with '-', e.g. --qos=high")
    name = value.split("=", 1)[0].split()[0]
    if name in RESERVED_OPTIONS:
        raise PydanticCustomError(
            "reserved_option",
            "{name} is set by `mixmerge run` on every job",
            {"name": name},
        )
    return value


def _stage(name: str, info: ValidationInfo) -> str:
    pipeline = domain_check(info, "pipeline_stages")
    known = pipeline() if pipeline else None
    if known is not None and name not in known:
        raise PydanticCustomError(
            "unknown_stage",
            "not a stage of dvc.yaml{hint}",
            {"hint": did_you_mean(name, known)},
        )
    return name


Memory = Annotated[str, AfterValidator(_memory)]
TimeLimit = Annotated[str, AfterValidator(_time)]
SbatchOption = Annotated[str, AfterValidator(_option)]
Stage = Annotated[str, AfterValidator(_stage)]


class Resources(Strict):
    """What one stage's job asks for; a field left out takes the defaults' value."""

    partition: str | None = None
    account: str | None = None
    nodes: Annotated[int, Field(ge=1)] | None = None
    gpus_per_node: Annotated[int, Field(ge=0)] | None = None
    cpus_per_task: Annotated[int, Field(ge=1)] | None = None
    memory: Memory | None = None
    time: TimeLimit | None = None
    # any other sbatch option, e.g. --qos=high, --constraint=h100, --exclusive
    sbatch: list[SbatchOption] = []
    # shell lines run before the stage: `module load cuda`, `source .venv/bin/activate`
    setup: list[str] = []


@dataclass(frozen=True)
class JobResources:
    """A stage's resources with every default applied."""

    partition: str | None
    account: str | None
    nodes: int
    gpus_per_node: int
    cpus_per_task: int
    memory: str
    time: str
    sbatch: tuple[str, ...]
    setup: tuple[str, ...]


# For CPU stages on any cluster: one core, 4 GB, a day.
_BUILTIN = {
    "nodes": 1, "gpus_per_node": 0, "cpus_per_task": 1, "memory": "4G", "time": "1-00:00:00"
}  # fmt: skip


class ClusterConfig(Strict):
    defaults: Resources = Resources()
    stages: dict[Stage, Resources] = {}

    def resources(self, stage: str) -> JobResources:
        """The resources of a stage of dvc.yaml (`sft@mix0` takes `stages.sft`)."""
        own = self.stages.get(stage.partition("@")[0], Resources())

        def pick(key: str):
            values = (getattr(own, key), getattr(self.defaults, key), _BUILTIN.get(key))
            return next((value for value in values if value is not None), None)

        return JobResources(
            partition=pick("partition"),
            account=pick("account"),
            nodes=pick("nodes"),
            gpus_per_node=pick("gpus_per_node"),
            cpus_per_task=pick("cpus_per_task"),
            memory=pick("memory"),
            time=pick("time"),
            sbatch=(*self.defaults.sbatch, *own.sbatch),
            setup=(*self.defaults.setup, *own.setup),
        )

    def covering(self, stages: Sequence[str]) -> JobResources:
        """The resources of one job that runs `stages` one after another (an experiment of a
        sweep): the most any of them asks for, for as long as their time limits add up to, in
        the partition and account of the one that asks for the most GPUs."""
        jobs = [self.resources(stage) for stage in stages]
        if len(jobs) == 1:
            return jobs[0]
        widest = max(jobs, key=lambda job: (job.nodes * job.gpus_per_node, job.cpus_per_task))
        return JobResources(
            partition=widest.partition,
            account=widest.account,
            nodes=max(job.nodes for job in jobs),
            gpus_per_node=max(job.gpus_per_node for job in jobs),
            cpus_per_task=max(job.cpus_per_task for job in jobs),
            memory=max((job.memory for job in jobs), key=_bytes),
            time=_slurm_time(sum(_seconds(job.time) for job in jobs)),
            sbatch=tuple(dict.fromkeys(o for job in jobs for o in job.sbatch)),
            setup=tuple(dict.fromkeys(line for job in jobs for line in job.setup)),
        )


def _bytes(memory: str) -> int:
    """SLURM's memory (`16G`; a bare number is megabytes) in bytes."""
    unit = memory[-1] if memory[-1].isalpha() else "M"
    return int(memory.rstrip("KMGT")) * 1024 ** "KMGT".index(unit) * 1024


def _seconds(limit: str) -> int:
    """A SLURM time limit in seconds: minutes, minutes:seconds, hours:minutes:seconds, or any
    of days-hours[:minutes[:seconds]]."""
    days, _, clock = limit.rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    if days:  # days-hours[:minutes[:seconds]]
        hours, minutes, seconds = (*parts, 0, 0)[:3]
    elif len(parts) == 3:  # hours:minutes:seconds
        hours, minutes, seconds = parts
    else:  # minutes[:seconds]
        hours, minutes, seconds = 0, *(*parts, 0)[:2]
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


def _slurm_time(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}-{hours:02d}:{minutes:02d}:{seconds:02d}"
