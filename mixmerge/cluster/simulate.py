"""How long a plan takes on a cluster of a given size: a simulation of its schedule.

Each step holds some GPUs of one or more nodes for a while; steps that hold no GPU (API calls,
data preparation, the report) run on CPU nodes, of which there are always enough. A step starts
once the steps it needs have ended and its GPUs are free, and among the steps ready at one time
the one with the longest chain of work after it goes first, which is what a scheduler that
backfills does well enough for a study's few dozen jobs.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mixmerge.cluster.plan import Step


@dataclass(frozen=True)
class Cost:
    """A step's estimated time and what it holds meanwhile."""

    seconds: float
    nodes: int = 1
    gpus_per_node: int = 0


@dataclass(frozen=True)
class Schedule:
    seconds: float  # wall time, the last step's end
    starts: dict[str, float]


def critical_path(steps: Sequence[Step], costs: Mapping[str, Cost]) -> tuple[float, list[str]]:
    """The longest chain of steps by time, however many machines: no schedule is shorter."""
    finish: dict[str, tuple[float, list[str]]] = {}
    for step in steps:  # in plan order: the steps a step needs come before it
        before = max((finish[need] for need in step.needs), default=(0.0, []))
        finish[step.name] = (before[0] + costs[step.name].seconds, [*before[1], step.name])
    return max(finish.values(), default=(0.0, []))


def simulate(
    steps: Sequence[Step], costs: Mapping[str, Cost], nodes: int, gpus_per_node: int
) -> Schedule:
    """The schedule of `steps` on `nodes` nodes of `gpus_per_node` GPUs each."""
    for step in steps:
        cost = costs[step.name]
        if cost.gpus_per_node > gpus_per_node or (cost.gpus_per_node and cost.nodes > nodes):
            raise ValueError(f"{step.name} needs more than a cluster of {nodes} nodes has")
    after = _work_after(steps, costs)
    waiting = {step.name: set(step.needs) for step in steps}
    free = [gpus_per_node] * nodes
    running: list[tuple[float, str, list[tuple[int, int]]]] = []  # (end, stage, held)
    ready = [stage for stage, needs in waiting.items() if not needs]
    starts: dict[str, float] = {}
    now = 0.0
    while ready or running:
        ready.sort(key=lambda stage: -after[stage])
        for stage in list(ready):
            held = _place(costs[stage], free)
            if held is None:
                continue
            ready.remove(stage)
            starts[stage] = now
            heapq.heappush(running, (now + costs[stage].seconds, stage, held))
        if not running:
            raise ValueError("a step can never start: " + ", ".join(ready))
        now, done, held = heapq.heappop(running)
        for node, count in held:
            free[node] += count
        for stage, needs in waiting.items():
            if done in needs:
                needs.discard(done)
                if not needs:
                    ready.append(stage)
    return Schedule(now, starts)


def _place(cost: Cost, free: list[int]) -> list[tuple[int, int]] | None:
    """The GPUs a step takes, node by node (fullest fit first), or None where they are busy."""
    if not cost.gpus_per_node:
        return []
    fitting = sorted((n for n, count in enumerate(free) if count >= cost.gpus_per_node),
                     key=lambda n: free[n])  # fmt: skip
    if len(fitting) < cost.nodes:
        return None
    held = [(node, cost.gpus_per_node) for node in fitting[: cost.nodes]]
    for node, count in held:
        free[node] -= count
    return held


def _work_after(steps: Sequence[Step], costs: Mapping[str, Cost]) -> dict[str, float]:
    """Each step's time plus the longest chain of steps that need it."""
    after = {step.name: costs[step.name].seconds for step in steps}
    for step in reversed(steps):
        for need in step.needs:
            after[need] = max(after[need], costs[need].seconds + after[step.name])
    return after
