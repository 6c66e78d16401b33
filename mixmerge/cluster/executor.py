"""What every executor offers the driver (`mixmerge.cluster.driver`): start the planned steps,
say where each stands, and what stopping the driver does to them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from mixmerge.cluster.plan import Step
from mixmerge.config.cluster import ClusterConfig


class State(str, Enum):
    """Where a step stands; the job script records `running`, `done` and `failed` itself."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = (State.DONE, State.FAILED, State.CANCELLED)


@dataclass(frozen=True)
class Status:
    state: State
    started: float | None = None
    ended: float | None = None
    job: str = ""  # the scheduler's id of the step's job, where there is one
    note: str = ""  # why it is pending or was cancelled, where the executor knows


class Executor(ABC):
    """Runs planned steps, each after the steps it needs, each through DVC."""

    interval = 1.0  # seconds between two looks at where the steps stand

    def __init__(self, root: Path, cluster: ClusterConfig, jobs: int):
        self.root = root
        self.cluster = cluster
        self.jobs = jobs

    @abstractmethod
    def start(self, steps: list[Step]) -> None:
        """Begin (or hand to a scheduler) every step, each after the steps it needs."""

    @abstractmethod
    def poll(self) -> dict[str, Status]:
        """Where every step stands now, by stage."""

    @abstractmethod
    def interrupt(self) -> str:
        """The driver is being stopped: do what that means for the steps, and say it."""

    def close(self) -> None:  # noqa: B027 (most executors hold nothing to release)
        """The driver is done with the executor."""
