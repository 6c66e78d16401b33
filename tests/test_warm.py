"""The warm worker: commands run in it behave as they do on their own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the worker imports torch, transformers and TRL once


def test_commands_in_the_worker_keep_their_directory_output_and_exit_code(
    tmp_path, small_raw, write_params
):
    write_params(small_raw)  # tmp_path/params.yaml
    (tmp_path / "bad.yaml").write_text("languages: [en, enn]\n")
    script = Path(sys.executable).with_name("mixmerge")
    inner = (
        f"{script} validate; echo code=$?; "
        f"{script} validate -p bad.yaml; echo code=$?; "
        'test -S "$MIXMERGE_WORKER" && echo served'
    )
    env = {**os.environ, "PATH": f"{script.parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [str(script), "warm", "--", "sh", "-c", inner],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "params.yaml: valid (3 languages" in result.stdout
    assert result.stdout.count("code=") == 2
    assert "code=0" in result.stdout and "code=2" in result.stdout
    assert "languages[1]: unknown language code" in result.stderr
    assert "served" in result.stdout
    failing = subprocess.run(
        [str(script), "warm", "--", "sh", "-c", "exit 3"], cwd=tmp_path, env=env, timeout=300
    )
    assert failing.returncode == 3


def test_a_command_runs_where_it_started_when_the_worker_stops_before_taking_it(
    tmp_path, monkeypatch
):
    from stages.warm import SOCKET_ENV, delegate

    path = str(tmp_path / "socket")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    monkeypatch.setenv(SOCKET_ENV, path)

    def stop_at_once():  # a worker whose imports failed: it closes what waits in its backlog
        connection, _ = listener.accept()
        connection.close()
        listener.close()

    worker = threading.Thread(target=stop_at_once)
    worker.start()
    assert delegate(["validate"]) is None
    worker.join()
