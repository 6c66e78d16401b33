"""The DVC pipeline end to end, in a temporary copy of the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path) -> str:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """The project's files (tracked or not ignored) in a fresh git repository."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    copy = tmp_path_factory.mktemp("repo")
    for name in filter(None, listed.split("\0")):
        # Reports are outputs: a working copy may hold some from its own runs.
        if (REPO / name).is_file() and not name.startswith("reports/"):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    _run(["git", "init", "-q"], copy)
    _run(["git", "add", "-A"], copy)
    _run(["git", "commit", "-q", "-m", "copy"], copy)
    return copy


def _stages_run(output: str) -> set[str]:
    return {
        line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")
    }


def test_repro_runs_prepare_and_every_mixture_then_does_nothing(repo):
    # The data half only: training stages have tests of their own (and take minutes).
    output = _run(["dvc", "repro", "mix"], repo)
    mixtures = yaml.safe_load((repo / "params.yaml").read_text())["mixtures"]
    assert _stages_run(output) == {"prepare"} | {f"mix@{name}" for name in mixtures}
    for name in mixtures:
        manifest = json.loads((repo / "reports" / "mixtures" / f"{name}.json").read_text())
        assert manifest["realised"]["safety_share"] == pytest.approx(
            mixtures[name]["safety"], abs=0.01
        )
    metrics = _run(["dvc", "metrics", "show", "--json"], repo)
    assert "realised" in metrics
    assert "up to date" in _run(["dvc", "repro", "mix"], repo)
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-q", "--allow-empty", "-m", "repro"], repo)


def test_an_experiment_on_one_share_reruns_only_that_mixture(repo):
    output = _run(["dvc", "exp", "run", "-S", "mixtures.mix15.safety=0.3", "mix"], repo)
    assert _stages_run(output) == {"mix@mix15"}
    manifest = json.loads((repo / "reports/mixtures/mix15.json").read_text())
    assert manifest["realised"]["safety_share"] == pytest.approx(0.3, abs=0.01)
    assert manifest["counts"]["ar"]["safety"] == 36


def test_each_training_run_depends_on_its_own_mixture_and_initial_model(repo):
    dag = _run(["dvc", "dag", "--outs", "--md"], repo)
    for run in ("mix0", "mix15", "mono15_hi"):
        assert f"data/mixtures/{run}" in dag and f"models/sft/{run}" in dag
    edges = _run(["dvc", "dag", "--dot"], repo)
    assert '"mix@mix15" -> "sft@mix15"' in edges
    assert '"sft@mix15" -> "dpo@mix15"' in edges
    assert '"mix@mix0" -> "sft@mix15"' not in edges
    # A merge waits for every model of its training stage; SFT -> merge -> DPO chains.
    assert '"sft@mix100" -> "merge@sft_ties"' in edges
    assert '"dpo@mix100" -> "merge@dpo_ties"' in edges
    assert '"merge@sft_slerp" -> "dpo@sft_slerp"' in edges
    # Every model is evaluated, after the base, whose responses it is compared with.
    assert '"evaluate-base" -> "evaluate-sft@mix15"' in edges
    assert '"sft@mix15" -> "evaluate-sft@mix15"' in edges
    assert '"dpo@sft_slerp" -> "evaluate-dpo@sft_slerp"' in edges
    assert '"merge@lang3_ties" -> "evaluate-merge@lang3_ties"' in edges
