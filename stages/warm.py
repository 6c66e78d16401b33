"""A warm worker for studies of many small stages: `mixmerge warm -- dvc repro`.

Each stage of a `dvc repro` is a new `mixmerge` process, and importing torch, transformers and
TRL costs it 2 to 8 s: on the embedded study that is most of the run. The worker imports them
once; every `mixmerge` command started while it runs hands its arguments, working directory,
environment and standard streams to it over a Unix socket, and the worker forks a child that
runs the command and reports its exit code. Besides the CLI, only third-party libraries are
imported before the fork, so each stage runs the project's current code. Without the worker (a
plain `dvc repro`), commands run as usual.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

SOCKET_ENV = "MIXMERGE_WORKER"
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


def delegate(argv: Sequence[str]) -> int | None:
    """Run `mixmerge argv` in the worker, if one serves this environment: its exit code, or
    None when there is no worker to ask."""
    path = os.environ.get(SOCKET_ENV)
    if not path or not Path(path).exists():
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except OSError:
        return None
    request = {"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}
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


def _serve_one(connection: socket.socket, run: Callable[[list[str]], int]) -> None:
    """In a forked child: become the client's process, run its command, report the code."""
    request, fds = _receive(connection)
    for target, fd in enumerate(fds[:_STREAMS]):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.pop(SOCKET_ENV, None)  # a command the child starts runs on its own
    connection.sendall(f"{os.getpid()}\n".encode())
    try:
        code = run(request["argv"])
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


def serve(path: str, run: Callable[[list[str]], int]) -> None:
    """Import the heavy libraries, then fork a child per connection until terminated."""
    # Listening first lets the command start at once: its first calls wait in the backlog
    # while the imports run.
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    # What the stages import (their own modules stay unimported, so each runs current code).
    import safetensors.torch  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401
    from trl import DPOTrainer, SFTTrainer  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped as they end
    while True:
        connection, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _serve_one(connection, run)
        connection.close()


def run_warm(command: Sequence[str], run: Callable[[list[str]], int]) -> int:
    """Run `command` (e.g. `dvc repro`) with a worker serving the `mixmerge` calls it makes."""
    folder = tempfile.mkdtemp(prefix="mixmerge-worker-")
    path = os.path.join(folder, "socket")
    server = os.fork()
    if server == 0:
        try:
            serve(path, run)
        finally:
            os._exit(0)
    try:
        while not os.path.exists(path):  # bound before its imports
            if os.waitpid(server, os.WNOHANG)[0]:
                raise RuntimeError("the worker stopped while starting")
            time.sleep(0.05)
        return subprocess.call(list(command), env={**os.environ, SOCKET_ENV: path})
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(server, signal.SIGTERM)
            os.waitpid(server, 0)
        Path(path).unlink(missing_ok=True)
        os.rmdir(folder)
