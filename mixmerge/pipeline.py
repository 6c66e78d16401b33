"""The stages the project's dvc.yaml declares, read without DVC (which is slow to import), for
params validation: `cluster.stages.<stage>` names one of them."""

from __future__ import annotations

from pathlib import Path

import yaml

from mixmerge import paths


def stage_groups(root: Path = paths.ROOT) -> tuple[str, ...] | None:
    """The stages of dvc.yaml at `root` (a `foreach` stage once, by its group), in its order;
    None where there is no dvc.yaml (params checked outside a project)."""
    path = Path(root) / "dvc.yaml"
    if not path.is_file():
        return None
    return tuple((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("stages") or {})
