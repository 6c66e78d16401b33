from __future__ import annotations

import pytest

from mixmerge.core.io import atomic_path


def test_a_file_appears_only_when_complete(tmp_path):
    target = tmp_path / "out.json"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"


def test_a_folder_replaces_the_previous_one_whole(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.bin").write_text("old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "weights.bin").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["weights.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_failure_keeps_the_previous_output_and_removes_the_partial_one(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights.bin").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "half.bin").write_text("partial")
        raise RuntimeError("killed")
    assert (target / "weights.bin").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_leftovers_of_a_killed_run_are_swept(tmp_path):
    leftover = tmp_path / ".model.tmp-99999"
    leftover.mkdir()
    with atomic_path(tmp_path / "model") as tmp:
        tmp.mkdir()
    assert not leftover.exists()
