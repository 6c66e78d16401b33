from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from mixmerge.config.profiles import resolved_text
from mixmerge.core.offline import go_offline

go_offline(force=True)  # tests never touch the network

REPO = Path(__file__).resolve().parents[1]
# Real prompt sets kept beside the project (never copied into it); tests that read them skip
# when the folder is absent.
SHARED_DATA = Path(os.environ.get("MIXMERGE_SHARED_DATA", REPO.parent / "shared" / "data"))


# --- two workers (`make test`) -----------------------------------------------------------------

# The modules whose tests share a study, by the study, the longest first: one worker runs each
# study's modules and builds it once, while the other takes the rest. (xdist's `xdist_group`
# marks would say the same, but pytest 9.2 drops them: pytest-dev/pytest-xdist#1386.)
STUDIES = {
    "test_cluster.py": "the smoke study",
    "test_end_to_end.py": "the smoke study",
    "test_browser.py": "the smoke study",
    "test_study_behaviour.py": "the default study",
    "test_real_model.py": "SmolLM2",
    # Not a study, but its tests run in order on one copy of the repository (an experiment
    # after a repro), so they must share a worker.
    "test_pipeline.py": "the pipeline's copy",
}


def pytest_configure(config) -> None:
    """Under several workers, each computes on its share of the cores: torch's threads on
    more cores than there are spin against each other."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


def pytest_collection_modifyitems(items: list) -> None:
    order = list(dict.fromkeys(STUDIES.values()))
    items.sort(
        key=lambda item: (
            order.index(STUDIES[item.path.name]) if item.path.name in STUDIES else len(order)
        )
    )


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerPerStudy(LoadScopeScheduling):
        """Each study's modules as one unit of work, and every other test as one, in the
        order collected."""

        def _split_scope(self, nodeid: str) -> str:
            return STUDIES.get(Path(nodeid.split("::", 1)[0]).name, nodeid)

    config.option.loadscopereorder = False
    return OneWorkerPerStudy(config, log)


@contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Run stages in `folder`, as DVC runs them in the repository."""
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


@pytest.fixture(scope="session")
def default_raw() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def raw(default_raw) -> dict:
    """A fresh, mutable copy of the default params."""
    return copy.deepcopy(default_raw)


@pytest.fixture
def small_raw() -> dict:
    """A small, valid study: quick to prepare and mix."""
    return {
        "languages": ["en", "fr", "hi"],
        "data": {
            "sources": {
                "world": {
                    "kind": "builtin",
                    "eval": {"general": 10, "safety": 12, "benign": 6},
                    "warmup": {"general": 20, "safety": 6},
                    "train": {"general": 60, "safety": 60},
                }
            }
        },
        "mixtures": {
            "mix15": {"safety": 0.15, "size_per_language": 40},
            "mix100": {"safety": 1.0, "size_per_language": 40},
        },
    }


@pytest.fixture
def write_params(tmp_path):
    def write(raw: dict, name: str = "params.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return path

    return write


# --- a tiny trained study, shared by the training and evaluation tests ----------------------

TINY = {
    "languages": ["en", "hi"],
    "data": {
        "sources": {
            "world": {
                "kind": "builtin",
                "eval": {"general": 10, "safety": 6, "benign": 4},
                "warmup": {"general": 20, "safety": 12, "benign": 6},
                "train": {"general": 40, "safety": 40},
            }
        }
    },
    "mixtures": {
        "mix15": {"safety": 0.15, "size_per_language": 40},
        "mix100": {"safety": 1.0, "size_per_language": 40},
    },
    "base": {
        "kind": "builtin",
        "vocab_size": 600,
        "architecture": {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "intermediate_size": 64,
        },
        "pretrain": {"learning_rate": 3.0e-3, "epochs": 3, "batch_size": 8},
        "warmup": {"learning_rate": 3.0e-3, "epochs": 1, "batch_size": 8},
    },
    "train": {
        "runtime": {"save_steps": 4, "logging_steps": 2},
        "sft": {"learning_rate": 1.0e-3, "epochs": 1, "batch_size": 8},
        "dpo": {"learning_rate": 1.0e-4, "epochs": 1, "batch_size": 8},
    },
    "sft": {"mix15": {"mixture": "mix15", "init": "base"}},
    "dpo": {"mix15": {"mixture": "mix15", "init": "sft/mix15"}},
}


def tiny_evaluated() -> dict:
    """A copy of TINY whose evaluation runs at test speed: short answers, a small bootstrap."""
    raw = copy.deepcopy(TINY)
    raw["evaluation"] = {"generation": {"max_new_tokens": 16}, "bootstrap": {"samples": 200}}
    return raw


def write(root: Path, raw: dict) -> Path:
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory) -> Path:
    """A folder holding the tiny study's prepared data, mixtures and base model."""
    from mixmerge.stages import base, mix, prepare

    from mixmerge.validation import validate_params

    root = tmp_path_factory.mktemp("study")
    params = validate_params(TINY)
    write(root, TINY)
    with inside(root):
        prepare.run(params)
        for name in params.mixtures:
            mix.run(params, name)
        base.run(params)
    return root


@pytest.fixture
def study(tiny_study, tmp_path) -> Path:
    """A private copy of the tiny study, for a test that trains or breaks things in it."""
    root = tmp_path / "study"
    shutil.copytree(tiny_study, root, symlinks=True)
    return root


def training_project(study: Path, epochs: int) -> Path:
    """The tiny study in `study` as a DVC project of one SFT run, long enough to be stopped
    mid-training (a checkpoint every 2 steps, 10 steps an epoch)."""
    raw = copy.deepcopy(TINY)
    raw["train"]["runtime"]["save_steps"] = 2
    raw["train"]["sft"]["epochs"] = epochs
    write(study, raw)
    (study / "dvc.yaml").write_text(
        "stages:\n  sft:\n    cmd: mixmerge sft mix15\n"
        "    deps: [data/mixtures/mix15, models/base]\n    outs: [models/sft/mix15]\n"
    )
    run_in(["dvc", "init", "--no-scm", "-q"], study)
    return study


# --- the repository, copied for DVC to run in -----------------------------------------------


def run_in(args: list[str], cwd: Path) -> str:
    """Run a command (dvc, git, mixmerge from this environment) in `cwd`; its output."""
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


@contextmanager
def running_judge_server(references: Path, key: str, *options: str) -> Iterator[str]:
    """tests/judge_server.py listening on 127.0.0.1 for as long as the block runs; its URL."""
    server = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "judge_server.py"), "--key", key,
         "--references", str(references), *options],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{int(server.stdout.readline().split()[1])}"
    finally:
        server.terminate()
        server.wait(timeout=10)


class SmokeStudy(NamedTuple):
    root: Path
    output: str
    seconds: float
    lock: dict  # dvc.lock as the serial run left it, before any test changed the study


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory) -> SmokeStudy:
    """The smoke profile run whole by a serial `dvc repro`, in a copy of the repository."""
    root = smoke_copy(tmp_path_factory.mktemp("smoke"))
    start = time.perf_counter()
    output = run_in(["mixmerge", "warm", "--", "dvc", "repro"], root)
    seconds = time.perf_counter() - start
    return SmokeStudy(root, output, seconds, yaml.safe_load((root / "dvc.lock").read_text()))


def smoke_copy(folder: Path) -> Path:
    """A copy of the repository whose params are the smoke profile, with no dvc.lock: a study
    of its own, from scratch (the default study's lock would only be rewritten after every
    stage, about a second each for DVC at its size)."""
    root = copy_repository(folder)
    (root / "params.yaml").write_text(resolved_text(REPO / "configs" / "smoke.yaml"))
    (root / "dvc.lock").unlink()
    run_in(["git", "commit", "-qam", "smoke profile"], root)
    return root


def copy_repository(copy: Path) -> Path:
    """The project's files (tracked or not ignored) in a fresh git repository at `copy`."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        # Reports are outputs: a working copy may hold some from its own runs.
        if (REPO / name).is_file() and not name.startswith("reports/"):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name, follow_symlinks=False)  # inputs/' links
    run_in(["git", "init", "-q"], copy)
    run_in(["git", "add", "-A"], copy)
    run_in(["git", "commit", "-q", "-m", "copy"], copy)
    return copy
