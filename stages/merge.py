"""Stage `merge@<merge>`: merge models tensor by tensor into a new model folder, once per
training seed (the replicates of that seed), each with its resolved recipe (merge.yaml), the
same merge for mergekit (mergekit.yaml), and how its task vectors interfere, per layer
(diagnostics.json, unless the merge's `diagnostics` are off), and whether its models can be
merged at all (in reports/merges/<merge>.json, unless params' `mergeability` is off)."""

from __future__ import annotations

from pathlib import Path

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.merging.mergeability import probe
from mixmerge.merging.replicates import write_merge


def run(
    params: StudyConfig, name: str, root: Path = paths.ROOT, max_shard_bytes: int = 5 * 10**9
) -> dict:
    """Every replicate of merge `name`, and its diagnostics by seed (reports/merges/)."""
    return write_merge(
        name, params.merges[name], params.seeds, root, max_shard_bytes, probe(params, root)
    )
