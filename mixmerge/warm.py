"""A warm worker for studies of many small stages.

Each stage of a `dvc repro` is a new `mixmerge` process, and importing torch, transformers and
TRL costs it 2 to 8 s: on the embedded study that is most of the run. The worker imports them
once; every `mixmerge` command it serves hands its arguments, working directory, environment and
standard streams to it over a Unix socket, and the worker forks a child that runs the command
and reports its exit code.

Two workers serve stages. `mixmerge warm -- dvc repro` starts one for that command. Without it,
the first stage of a `dvc repro` or `dvc exp run` (DVC sets `DVC_STAGE` for every stage) starts
a worker in the background that the later stages share, and that stops once no stage has come
for `MIXMERGE_WORKER_IDLE` seconds (60 by default); `MIXMERGE_NO_WORKER=1` turns it off. Such a
worker imports no stage code, so each stage runs the project's current code, and it serves only
calls from the same Python, packages and environment (a `pip install` or a changed variable
starts another).

A stage stops when it is stopped: the worker's child of a call leads its own process group,
which is killed as soon as the calling process is gone (a SIGKILL included), and the calling
process ends with the DVC process that runs it (`mixmerge.lifeline`).
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from mixmerge.lifeline import end_group_when_closed, when_ended

SOCKET_ENV = "MIXMERGE_WORKER"
OFF_ENV = "MIXMERGE_NO_WORKER"
IDLE_ENV = "MIXMERGE_WORKER_IDLE"
# Per call, not per environment: they must not change which worker serves a stage.
_PER_CALL = {"DVC_STAGE", "PWD", "OLDPWD", "SHLVL", "_"}
_STREAMS = 3  # stdin, stdout, stderr travel with the request


def _send(connection: socket.socket, payload: dict, fds: Sequence[int] = ()) -> None:
    data = json.dumps(payload).encode() + b"\n"
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    connection.sendmsg([data], ancillary)


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    data, ancillary, _, _ = connection.recvmsg(1 << 20, socket.CMSG_SPACE(_STREAMS * 4))
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    while not data.endswith(b"\n"):
        more = connection.recv(1 << 20)
        if not more:
            break
        data += more
    return json.loads(data), list(fds)


def _connect(path: str | Path) -> socket.socket | None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except OSError:
        connection.close()
        return None
    return connection


def _environment_key() -> str:
    """Which stage worker may serve this process: the same Python, the same installed
    packages and the same environment, since libraries read variables when imported."""
    packages = Path(sysconfig.get_paths()["purelib"])
    variables = sorted((k, v) for k, v in os.environ.items() if k not in _PER_CALL)
    identity = repr((sys.executable, packages.stat().st_mtime_ns, variables))
    return hashlib.sha256(identity.encode()).hexdigest()[:20]


def _stage_worker() -> socket.socket | None:
    """A connection to the worker of this run's stages, started by the first stage."""
    folder = Path(tempfile.gettempdir()) / f"mixmerge-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    owner = folder.stat()
    if owner.st_uid != os.getuid() or owner.st_mode & 0o077:
        return None  # a worker there could be anyone's, and it would get our environment
    path = folder / f"{_environment_key()}.socket"
    if len(str(path)) > 100:  # past what a Unix socket's address holds on some systems
        return None
    import fcntl  # POSIX only, like the worker: imported here so the module loads anywhere

    with open(folder / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # stages run in parallel start one worker
        connection = _connect(path)
        if connection is not None:
            return connection
        path.unlink(missing_ok=True)  # left by a worker that did not stop cleanly
        worker = subprocess.Popen(
            [sys.executable, "-m", "mixmerge.warm", str(path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not path.exists():  # it binds before its imports
            if worker.poll() is not None or time.monotonic() > deadline:
                return None  # it could not start: this stage runs on its own
            time.sleep(0.01)
        return _connect(path)


def _worker_connection() -> socket.socket | None:
    explicit = os.environ.get(SOCKET_ENV)
    if explicit:
        return _connect(explicit) if Path(explicit).exists() else None
    on = os.environ.get(OFF_ENV, "") in ("", "0") and os.name == "posix"
    if os.environ.get("DVC_STAGE") and on:
        return _stage_worker()
    return None


def delegate(argv: Sequence[str], entry: str) -> int | None:
    """Run `mixmerge argv` in a worker, when one serves this call (see the module's
    docstring): its exit code, or None when this process should run the command itself.
    `entry` (`module:function`) is what the worker's child calls with `argv`: the command's
    own code, imported there, so the worker never holds a version of it."""
    connection = _worker_connection()
    if connection is None:
        return None
    request = {"argv": list(argv), "entry": entry, "cwd": os.getcwd(), "env": dict(os.environ)}
    replies = connection.makefile()
    try:
        _send(connection, request, fds=[0, 1, 2])
        first = replies.readline()
    except OSError:
        first = ""
    if not first.strip():  # the worker stopped before it took the call: run it here
        return None
    child = int(first)

    def forward(signum, _frame):  # a stage stopped by DVC stops its child
        os.kill(child, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    reply = replies.readline()
    return int(reply) if reply.strip() else 1


def _serve_one(connection: socket.socket) -> None:
    """In a forked child: become the client's process, run its command, report the code."""
    request, fds = _receive(connection)
    for target, fd in enumerate(fds[:_STREAMS]):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.pop(SOCKET_ENV, None)  # a command the child starts runs on its own
    os.environ[OFF_ENV] = "1"
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:  # torch read it once, when the worker imported it
        import torch

        torch.set_num_threads(int(threads))
    # The client holds the connection open until the child reports: once it closes, whatever
    # killed the client meant the stage to stop, so the child's whole group ends there.
    os.setpgid(0, 0)
    connection.sendall(f"{os.getpid()}\n".encode())
    end_group_when_closed(connection)
    try:
        code = _run_entry(request["entry"], request["argv"])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # the traceback goes to the client's stderr, as it would
        import traceback

        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    connection.sendall(f"{code}\n".encode())
    os._exit(code)


def serve(path: str, idle: float | None = None) -> None:
    """Import the heavy libraries, then fork a child per connection until terminated, or
    until no connection has come for `idle` seconds."""
    # Listening first lets the command start at once: its first calls wait in the backlog
    # while the imports run.
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    # What the stages import (the commands' own code stays unimported, so each runs as it is now).
    import pydantic  # noqa: F401
    import safetensors.torch  # noqa: F401
    import typer  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401
    from trl import DPOTrainer, SFTTrainer  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped as they end
    listener.settimeout(idle)
    while True:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            Path(path).unlink(missing_ok=True)
            listener.close()
            return
        connection.settimeout(None)
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _serve_one(connection)
        connection.close()


@contextlib.contextmanager
def serving() -> Iterator[str]:
    """A worker in a fork of this process for as long as the block runs; its socket, which a
    command finds through the environment variable `SOCKET_ENV`."""
    folder = tempfile.mkdtemp(prefix="mixmerge-worker-")
    path = os.path.join(folder, "socket")
    server = os.fork()
    if server == 0:
        try:
            when_ended(os.getppid(), lambda: os._exit(0))  # even when its owner is killed
            serve(path)
        finally:
            os._exit(0)
    try:
        while not os.path.exists(path):  # bound before its imports
            if os.waitpid(server, os.WNOHANG)[0]:
                raise RuntimeError("the worker stopped while starting")
            time.sleep(0.05)
        yield path
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(server, signal.SIGTERM)
            os.waitpid(server, 0)
        Path(path).unlink(missing_ok=True)
        os.rmdir(folder)


def run_warm(command: Sequence[str]) -> int:
    """Run `command` (e.g. `dvc repro`) with a worker serving the `mixmerge` calls it makes."""
    with serving() as path:
        return subprocess.call(list(command), env={**os.environ, SOCKET_ENV: path})


def _run_entry(entry: str, argv: list[str]) -> int:
    """In a worker's child: import the command's code as it is now, and run it."""
    module, _, function = entry.partition(":")
    return getattr(importlib.import_module(module), function)(argv)


if __name__ == "__main__":  # a stage worker, started by `_stage_worker`
    from mixmerge.core.offline import go_offline

    go_offline()  # before the libraries read the variables, as the CLI does
    serve(sys.argv[1], idle=float(os.environ.get(IDLE_ENV) or 60))
