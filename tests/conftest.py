from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from stages.core.offline import go_offline

go_offline(force=True)  # tests never touch the network

REPO = Path(__file__).resolve().parents[1]
# Real prompt sets kept beside the project (never copied into it); tests that read them skip
# when the folder is absent.
SHARED_DATA = Path(os.environ.get("MIXMERGE_SHARED_DATA", REPO.parent / "shared" / "data"))


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
