"""Stage `merge@<merge>`: merge models tensor by tensor into a new model folder, once per
training seed (the replicates of that seed), each with its resolved recipe (merge.yaml), the
same merge for mergekit (mergekit.yaml), and how its task vectors interfere, per layer
(diagnostics.json, unless the merge's `diagnostics` are off)."""

from __future__ import annotations

from pathlib import Path

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.errors import StageError
from mixmerge.core.io import atomic_path, write_json
from mixmerge.merging.replicates import inputs_of, inspect_inputs, layer_rows, merge_replicate


def run(
    params: StudyConfig, name: str, root: Path = paths.ROOT, max_shard_bytes: int = 5 * 10**9
) -> dict:
    """Every replicate of merge `name`, and its diagnostics by seed (reports/merges/)."""
    merge = params.merges[name]
    missing = [
        (ref, paths.folder(ref, seed, root))
        for ref in inputs_of(merge)
        for seed in params.seeds
        if not paths.folder(ref, seed, root).is_dir()
    ]
    if missing:
        ref, folder = missing[0]
        raise StageError(f"no model at {folder}: run {paths.producer(ref)} first")
    # Every input of every seed is checked against its headers, and the models against each
    # other, before anything is written: a bad input leaves no output at all.
    inputs = {seed: inspect_inputs(merge, seed, root) for seed in params.seeds}
    summary = {"method": merge.method, "stage": merge.stage, "seeds": {}}
    layers = {}
    # Every replicate or none: a merge that fails for one seed leaves no folder at all.
    with atomic_path(root / paths.MODELS / "merge" / name) as folder:
        folder.mkdir()
        for seed in params.seeds:
            replicate = paths.seed_folder(seed)
            diagnostics = merge_replicate(
                name, merge, seed, root, folder / replicate, max_shard_bytes, *inputs[seed]
            )
            # Without diagnostics the reports stay, empty, as DVC declares them.
            summary["seeds"][replicate] = diagnostics["overall"] if diagnostics else {}
            layers[replicate] = layer_rows(diagnostics) if diagnostics else []
    with atomic_path(root / paths.MERGE_REPORTS / name) as tmp:
        for replicate, rows in layers.items():
            write_json(tmp / f"{replicate}.json", rows)
    with atomic_path(paths.merge_report(name, root)) as tmp:
        write_json(tmp, summary)
    return summary
