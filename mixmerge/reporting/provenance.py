"""How to reproduce a report: the commands, and what pins its inputs.

A report names its params by a digest of them as validated, and the packages it ran on by their
versions. It names no git commit, nor a digest of code it does not depend on: a stage's outputs
must follow from its inputs alone, and DVC's run cache restores a report for the same inputs at
a later commit, where a commit written into it would be wrong. What pins the code and the data
is dvc.lock, committed with the report: every stage's code files and inputs by their hashes.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata

from mixmerge.config import StudyConfig

# The installed packages whose versions a figure depends on.
PACKAGES = ("mixmerge", "torch", "transformers", "trl", "peft", "dvc")


def params_digest(params: StudyConfig) -> str:
    """The first 16 hex digits of the SHA-256 of the params as validated (defaults filled in),
    so that two files that say the same thing have the same digest. `cluster` is left out: it
    says where stages run, never what they compute."""
    canonical = json.dumps(params.model_dump(mode="json", exclude={"cluster"}), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def provenance(params: StudyConfig) -> str:
    """The report's last section, in Markdown."""
    installed = ", ".join(f"{name} {version}" for name, version in versions().items())
    return "\n".join(
        [
            "## How to reproduce this run",
            "",
            "`make run` (or `dvc repro` in its environment) in a clone of the commit that holds "
            "this report rebuilds every output. That commit's `dvc.lock` pins every stage's "
            "code files, data, models and evaluations by their hashes, and `dvc status` says "
            "whether a workspace still matches it. Another machine gives other digits; the "
            "intervals (How to read the figures) say where its figures should land.",
            "",
            f"- params digest: `{params_digest(params)}` (SHA-256 of the params as validated)",
            f"- training seeds: {', '.join(map(str, params.seeds))}",
            f"- packages: {installed}",
        ]
    )
