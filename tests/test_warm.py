"""The warm worker: commands run in it behave as they do on their own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import training_project

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
    from mixmerge.warm import SOCKET_ENV, delegate

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
    assert delegate(["validate"], entry="mixmerge.stages.cli:run_in_worker") is None
    worker.join()


def test_dvc_stages_share_a_worker_the_first_one_starts_and_that_stops_when_idle(
    tmp_path, small_raw, write_params
):
    write_params(small_raw)
    script = Path(sys.executable).with_name("mixmerge")
    temporary = Path(tempfile.mkdtemp(prefix="mm-"))  # short: a socket address is short
    workers = temporary / f"mixmerge-{os.getuid()}"
    # What DVC sets for a stage's command, and a short idle time for the test.
    env = {**os.environ, "TMPDIR": str(temporary), "DVC_STAGE": "validate"}
    env.update({"MIXMERGE_WORKER_IDLE": "10"})
    env.pop("MIXMERGE_WORKER", None)
    env.pop("MIXMERGE_NO_WORKER", None)

    def validate(**extra):
        return subprocess.run(
            [str(script), "validate"], cwd=tmp_path, env={**env, **extra},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    first = validate()
    assert first.returncode == 0 and "valid (3 languages" in first.stdout, first.stderr
    sockets = list(workers.glob("*.socket"))
    assert len(sockets) == 1  # started by the first stage, still serving
    second = validate()
    assert second.returncode == 0 and second.stdout == first.stdout
    assert list(workers.glob("*.socket")) == sockets  # the same worker served it
    assert validate(OTHER="1").returncode == 0  # another environment, another worker
    assert set(workers.glob("*.socket")) - set(sockets)
    deadline = time.monotonic() + 30
    while list(workers.glob("*.socket")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not list(workers.glob("*.socket"))  # every worker stopped once idle

    off = validate(MIXMERGE_NO_WORKER="1")
    assert off.returncode == 0 and not list(workers.glob("*.socket"))
    shutil.rmtree(temporary)
    too_deep = tmp_path / ("d" * 60)  # a socket there would be past an address's length
    too_deep.mkdir()
    assert validate(TMPDIR=str(too_deep)).returncode == 0
    assert not list(too_deep.glob("*/*.socket"))


# --- a stage that is stopped stops ----------------------------------------------------------


def _newest_write(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.rglob("*")), default=0.0)


@pytest.mark.parametrize("victim", ["stage", "dvc"])
def test_a_stage_killed_under_the_worker_stops_writing_at_once(study, victim):
    import psutil

    root = training_project(study, epochs=200)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    log = root / "repro.log"
    with log.open("w") as output:
        warm = subprocess.Popen(
            [str(bin_dir / "mixmerge"), "warm", "--", "dvc", "repro"], cwd=root, env=env,
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    checkpoints = root / "checkpoints" / "sft" / "mix15"
    deadline = time.monotonic() + 180
    while not list(checkpoints.rglob("checkpoint-*")):
        assert warm.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    dvc, server = sorted(psutil.Process(warm.pid).children(), key=lambda p: "warm" in p.cmdline())
    [stage] = dvc.children()
    # The training runs in the worker's child for the call, a fork of the worker, not of DVC.
    trainers = server.children()
    assert trainers

    (stage if victim == "stage" else dvc).kill()
    killed_at = time.time()
    psutil.wait_procs(trainers, timeout=10)
    assert not any(p.is_running() for p in trainers), "the training went on after the kill"
    if victim == "dvc":
        stage.wait(10)  # the stage's own process ends with the DVC process that ran it
    time.sleep(3)  # as long as a dozen more checkpoints would take
    assert _newest_write(checkpoints) < killed_at + 1
    assert not (root / "models" / "sft" / "mix15").exists()
    warm.kill()
    warm.wait()
