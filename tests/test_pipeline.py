"""The DVC pipeline end to end, in a temporary copy of the repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import copy_repository, run_in

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return copy_repository(tmp_path_factory.mktemp("repo"))


def stages_run(output: str) -> set[str]:
    return {
        line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")
    }


def test_repro_runs_prepare_and_every_mixture_then_does_nothing(repo):
    # The data half only: training stages have tests of their own (and take minutes).
    output = run_in(["dvc", "repro", "mix"], repo)
    mixtures = yaml.safe_load((repo / "params.yaml").read_text())["mixtures"]
    assert stages_run(output) == {"prepare"} | {f"mix@{name}" for name in mixtures}
    for name in mixtures:
        manifest = json.loads((repo / "reports" / "mixtures" / f"{name}.json").read_text())
        assert manifest["realised"]["safety_share"] == pytest.approx(
            mixtures[name]["safety"], abs=0.01
        )
    metrics = run_in(["dvc", "metrics", "show", "--json"], repo)
    assert "realised" in metrics
    assert "up to date" in run_in(["dvc", "repro", "mix"], repo)
    run_in(["git", "add", "-A"], repo)
    run_in(["git", "commit", "-q", "--allow-empty", "-m", "repro"], repo)


def test_an_experiment_on_one_share_reruns_only_that_mixture(repo):
    output = run_in(["dvc", "exp", "run", "-S", "mixtures.mix15.safety=0.3", "mix"], repo)
    assert stages_run(output) == {"mix@mix15"}
    manifest = json.loads((repo / "reports/mixtures/mix15.json").read_text())
    assert manifest["realised"]["safety_share"] == pytest.approx(0.3, abs=0.01)
    assert manifest["counts"]["ar"]["safety"] == 75  # 30 % of 250


def test_each_training_run_depends_on_its_own_mixture_and_initial_model(repo):
    dag = run_in(["dvc", "dag", "--outs", "--md"], repo)
    for run in ("mix0", "mix15", "mono15_hi"):
        assert f"data/mixtures/{run}" in dag and f"models/sft/{run}" in dag
    edges = run_in(["dvc", "dag", "--dot"], repo)
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


def test_a_sweep_queues_one_experiment_per_value(repo):
    sweep = "merges.sft_ties.parameters.density=0.3,0.7"
    run_in(["dvc", "exp", "run", "--queue", "-S", sweep], repo)
    queued = run_in(["dvc", "queue", "status"], repo)
    assert queued.count("Queued") == 2, queued
    run_in(["dvc", "queue", "remove", "--queued"], repo)
