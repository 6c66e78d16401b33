"""Steps side by side on this machine, at most `jobs` at once, through one warm worker."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import ExitStack, suppress

from mixmerge.cluster import jobs as job_files
from mixmerge.cluster.executor import Executor, State, Status
from mixmerge.cluster.plan import Step
from mixmerge.lifeline import DRIVER_ENV
from mixmerge.warm import OFF_ENV, SOCKET_ENV, serving


class LocalExecutor(Executor):
    """A step starts once every step it needs is done; a failed step cancels the steps that
    need it, directly or not, and the others go on. Stages share a warm worker (the driver's
    fork), and every stage ends with the driver, however the driver ends."""

    interval = 0.1  # a look costs a wait() per running stage; a slot left empty costs more

    def start(self, steps: list[Step]) -> None:
        # The longest chain of stages waiting on a step first: it bounds the run's length.
        chain = {step.name: 0 for step in steps}
        for step in reversed(steps):
            for need in step.needs:
                chain[need] = max(chain[need], chain[step.name] + 1)
        order = sorted(range(len(steps)), key=lambda i: -chain[steps[i].name])
        self.steps = {steps[i].name: steps[i] for i in order}
        self.status = {step.name: Status(State.PENDING) for step in steps}
        self.running: dict[str, subprocess.Popen] = {}
        self.exits = ExitStack()
        env = {**os.environ, DRIVER_ENV: str(os.getpid())}
        if os.environ.get(OFF_ENV, "") in ("", "0") and os.name == "posix":
            env[SOCKET_ENV] = self.exits.enter_context(serving())
        self.env = env
        self._advance()

    def poll(self) -> dict[str, Status]:
        self._advance()
        return dict(self.status)

    def _advance(self) -> None:
        for name, process in list(self.running.items()):
            code = process.poll()
            if code is None:
                continue
            del self.running[name]
            started = self.status[name].started
            self.status[name] = Status(
                State.DONE if code == 0 else State.FAILED, started, time.time()
            )
            if code != 0:
                self._cancel_dependents(name)
        ready = [
            name
            for name, step in self.steps.items()
            if self.status[name].state == State.PENDING
            and all(self.status[need].state == State.DONE for need in step.needs)
        ]
        for name in ready[: max(0, self.jobs - len(self.running))]:
            self._launch(name, sharing=min(self.jobs, len(self.running) + len(ready)))

    def _launch(self, name: str, sharing: int) -> None:
        """Start a step; `sharing` steps will share the cores meanwhile, as far as one can
        tell now: a stage alone on the critical path (the base) takes them all."""
        step = self.steps[name]
        job = self.cluster.covering(step.stages)
        script = job_files.write_script(self.root, step, job, batch=False)
        log = job_files.files(self.root, name).log
        env = dict(self.env)
        if "OMP_NUM_THREADS" not in os.environ:
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, sharing)))
        with log.open("w") as output:
            self.running[name] = subprocess.Popen(
                ["bash", str(script)], cwd=self.root, env=env, stdout=output,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.status[name] = Status(State.RUNNING, time.time())

    def _cancel_dependents(self, failed: str) -> None:
        blocked, grew = {failed}, True
        while grew:
            waiting = {s for s, step in self.steps.items() if blocked.intersection(step.needs)}
            grew = not waiting <= blocked
            blocked |= waiting
        for name in blocked - {failed}:
            if self.status[name].state == State.PENDING:
                self.status[name] = Status(State.CANCELLED, note=f"{failed} failed")

    def interrupt(self) -> str:
        for process in self.running.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.running.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
        stopped = len(self.running)
        return f"stopped {stopped} running stage{'s' if stopped != 1 else ''}"

    def close(self) -> None:
        self.exits.close()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
