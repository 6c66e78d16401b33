"""Params validation, the one entry point every command and stage calls: the schema
(`mixmerge.config`, which imports nothing of the library), with the checks that need what the
library knows, each from the package that knows it. Every problem is reported at once, with
its key path and a did-you-mean; none of this imports torch, so that a mistake is answered at
once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixmerge import world
from mixmerge.config.common import ParamsError
from mixmerge.config.profiles import read_params
from mixmerge.config.study import StudyConfig, params_problems
from mixmerge.data.mixing import share_problem
from mixmerge.merging import registry
from mixmerge.pipeline import stage_groups
from mixmerge.search.checks import search_problems
from mixmerge.world.checks import source_problems

# The library's checks the schema runs as it parses (`mixmerge.config.common.DOMAIN_CHECKS`).
DOMAIN = {
    "world_languages": world.LANGUAGES,
    "world_problems": source_problems,
    "mixture_problem": share_problem,
    "pipeline_stages": stage_groups,
    **registry.CHECKS,
}


def validate_params(raw: Any, source: str = "params") -> StudyConfig:
    """`raw` (a params file's YAML) as the study's typed params, or a ParamsError with every
    problem it has."""
    params, problems = params_problems(raw, DOMAIN)
    if params is not None:
        problems += search_problems(params)
    if problems:
        raise ParamsError(source, problems)
    return params


def load_params(path: str | Path = "params.yaml") -> StudyConfig:
    """The params file at `path` (a profile composed with the file it extends), validated."""
    return validate_params(read_params(path), source=str(path))
