"""A merge of the study's models, as params declare it: one seed's replicates merged by the
engine, with the recipe that made them (merge.yaml), the same merge for mergekit
(mergekit.yaml) and how the task vectors interfere (diagnostics.json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from mixmerge import paths
from mixmerge.config.merges import MergeConfig
from mixmerge.core.errors import StageError
from mixmerge.core.io import atomic_path, write_json
from mixmerge.core.model_folder import companion_files
from mixmerge.merging import engine, mergeability, recipe
from mixmerge.merging.definition import Inputs
from mixmerge.merging.diagnostics import Diagnostics, Interference
from mixmerge.merging.plan import Job
from mixmerge.merging.registry import METHODS
from mixmerge.merging.weights import Weights, check_compatible, read_weights


def inputs_of(merge: MergeConfig) -> list[str]:
    """The models a merge reads, in params order (its models, then its base), each once."""
    return list(dict.fromkeys([m.model for m in merge.models] + [merge.base] * bool(merge.base)))


def inspect_inputs(
    merge: MergeConfig, seed: int, root: Path
) -> tuple[dict[str, Weights], Weights | None]:
    """The models `merge` reads for training seed `seed`, checked against their safetensors
    headers and against each other; and the model its diagnostics measure task vectors from,
    the common ancestor: the merge's base for task-vector methods, else the study's base model
    when it has the same tensors (None when there is none, or the diagnostics are off)."""
    refs = inputs_of(merge)
    weights = {ref: read_weights(paths.folder(ref, seed, root)) for ref in refs}
    check_compatible(weights)
    if not merge.diagnostics:
        return weights, None
    if METHODS[merge.method].inputs is Inputs.TASK_VECTORS:
        return weights, weights[merge.base]
    folder = paths.folder(paths.BASE, seed, root)
    if not folder.is_dir():
        return weights, None
    candidate = read_weights(folder)
    try:
        check_compatible({refs[0]: weights[refs[0]], paths.BASE: candidate})
    except StageError:
        return weights, None
    return weights, candidate


def merge_replicate(
    name: str,
    merge: MergeConfig,
    seed: int,
    root: Path,
    folder: Path,
    max_shard_bytes: int,
    weights: dict[str, Weights],
    reference: Weights | None,
) -> Diagnostics | None:
    """Merge the replicates of training seed `seed` (`weights`, from `inspect_inputs`) into
    `folder`; its interference diagnostics, from `reference`, or None when they are off."""
    method = METHODS[merge.method]
    refs = [m.model for m in merge.models]
    if method.inputs is Inputs.ENDS:
        # From the base (t = 0) to the other model; a model merged with itself is both ends.
        order = sorted(range(len(refs)), key=lambda i: refs[i] != merge.base)
    else:
        order = list(range(len(refs)))
    settings = recipe.model_settings(merge)
    job = Job(
        method=method,
        inputs=[weights[refs[i]] for i in order],
        model_settings=[settings[i] for i in order],
        merge_settings=recipe.merge_settings(merge),
        base=weights[merge.base] if method.inputs is Inputs.TASK_VECTORS else None,
        seed=f"{merge.seed}:{seed}",
        out_dtype=recipe.OUT_DTYPES.get(merge.out_dtype),
    )
    interference = Interference([refs[i] for i in order]) if merge.diagnostics else None
    folder.mkdir()
    observe = interference.observe if interference else None
    engine.run(job, folder, max_shard_bytes, observe, reference)
    copy_companions(job.template.folder, folder, merge.out_dtype)
    relative = {ref: paths.folder(ref, seed, root).relative_to(root) for ref in weights}
    (folder / "merge.yaml").write_text(
        yaml.safe_dump(recipe.resolved(name, merge, relative, seed), sort_keys=False)
    )
    mergekit = recipe.mergekit_config(merge, relative, job.template.float_dtype)
    (folder / "mergekit.yaml").write_text(yaml.safe_dump(mergekit, sort_keys=False))
    if interference is None:
        return None
    diagnostics = interference.report()
    write_json(folder / "diagnostics.json", diagnostics)
    return diagnostics


def write_merge(
    name: str,
    merge: MergeConfig,
    seeds: list[int],
    root: Path,
    max_shard_bytes: int,
    probe: mergeability.Probe | None = None,
) -> dict:
    """Merge `name`, every replicate of it (models/merge/<name>/seed-<s>), and its diagnostics
    by seed (reports/merges/): what `merge@<name>` makes, and a search for each point it
    chooses; with a `probe`, the mergeability of each replicate's models too. Every input of
    every seed is checked against its headers, and the models against each other, before
    anything is written: a bad input leaves no output at all."""
    missing = [
        (ref, paths.folder(ref, seed, root))
        for ref in inputs_of(merge)
        for seed in seeds
        if not paths.folder(ref, seed, root).is_dir()
    ]
    if missing:
        ref, folder = missing[0]
        raise StageError(f"no model at {folder}: run {paths.producer(ref)} first")
    inputs = {seed: inspect_inputs(merge, seed, root) for seed in seeds}
    summary = {"method": merge.method, "stage": merge.stage, "seeds": {}}
    layers = {}
    # Every replicate or none: a merge that fails for one seed leaves no folder at all.
    with atomic_path(root / paths.MODELS / "merge" / name) as folder:
        folder.mkdir()
        for seed in seeds:
            replicate = paths.seed_folder(seed)
            diagnostics = merge_replicate(
                name, merge, seed, root, folder / replicate, max_shard_bytes, *inputs[seed]
            )
            # Without diagnostics the reports stay, empty, as DVC declares them.
            summary["seeds"][replicate] = diagnostics["overall"] if diagnostics else {}
            layers[replicate] = layer_rows(diagnostics) if diagnostics else []
            if probe is not None:
                # Beside the model, not in its folder: its evaluation need not run again
                # when only the measure changes.
                found = measure_replicate(merge, seed, root, folder / replicate, probe)
                summary.setdefault("mergeability", {})[replicate] = found.to_json()
    with atomic_path(root / paths.MERGE_REPORTS / name) as tmp:
        for replicate, rows in layers.items():
            write_json(tmp / f"{replicate}.json", rows)
    with atomic_path(paths.merge_report(name, root)) as tmp:
        write_json(tmp, summary)
    return summary


def measure_replicate(
    merge: MergeConfig, seed: int, root: Path, merged: Path | None, probe: mergeability.Probe
) -> mergeability.Mergeability:
    """The mergeability of the models `merge` combines for training seed `seed` (in params
    order; a model merged with itself is both ends of its path), their task vectors measured
    from the merge's base for task-vector methods, else from the study's base, and the loss of
    the `merged` model."""
    models = [(m.model, paths.folder(m.model, seed, root)) for m in merge.models]
    vectors = METHODS[merge.method].inputs is Inputs.TASK_VECTORS
    ancestor = merge.base if vectors else paths.BASE
    return mergeability.measure(
        models, (ancestor, paths.folder(ancestor, seed, root)), probe.records, probe.split,
        probe.settings, merged, probe.trust_remote_code,
    )  # fmt: skip


def layer_rows(diagnostics: Diagnostics) -> list[dict]:
    """Per layer, the interference figures as DVC plots read them (one row per layer)."""
    rows = []
    for layer, figures in diagnostics["layers"].items():
        if layer == "other":
            continue
        cosines = [c for c in figures["cosine"].values() if c == c]  # NaN when a vector is 0
        rows.append(
            {
                "layer": int(layer),
                "sign_conflicts": round(figures["sign_conflicts"], 6),
                "mean_cosine": round(sum(cosines) / len(cosines), 6) if cosines else None,
                "moved_by_two_or_more": round(figures["moved_by_two_or_more"], 6),
            }
        )
    return rows


def copy_companions(source: Path, out: Path, out_dtype: str | None) -> None:
    """The config, tokenizer and chat template of `source` into `out`, in the merge's dtype."""
    for file in companion_files(source):
        shutil.copyfile(file, out / file.name)  # resolves links into real files
    if out_dtype:
        config = json.loads((out / "config.json").read_text())
        (out / "config.json").write_text(json.dumps(config | {"dtype": out_dtype}, indent=2) + "\n")
