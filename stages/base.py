"""Stage `base`: the base model every run starts from, once per training seed.

`base.kind: builtin` trains a tokenizer and a small Cohere model on the embedded world here;
`hf` resolves a hub id (from the local cache) or a local path, checks it, and links its files;
`gguf` converts a llama.cpp file into a safetensors folder. A real model with `warmup` is
fine-tuned on the world's warm-up split first. What is trained here (the builtin base, a
warm-up) is trained once per seed, each seed's runs starting from their own; a model taken as
it is is the same for every seed.
"""

from __future__ import annotations

from pathlib import Path

import typer
from mixmerge.stages.commands import PARAMS, ParamsFile, load, run_stage

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.io import atomic_path, write_json
from mixmerge.core.model_folder import link_model
from mixmerge.inputs import link_inputs


def run(params: StudyConfig, root: Path = paths.ROOT) -> dict:
    from mixmerge.training.base_model import base_files, build_base

    link_inputs("base", base_files(params.base, root), root)
    report = paths.train_report(paths.BASE, root)
    metrics = {}
    first = None
    for seed in params.seeds:
        replicate, out = paths.seed_folder(seed), paths.folder(paths.BASE, seed, root)
        if first is not None and params.base.warmup is None:  # taken as it is: one model
            link_model(first, out)
            metrics[replicate] = metrics[first.name]
            continue
        metrics[replicate] = build_base(
            params.base,
            params.train.runtime.model_copy(update={"seed": seed}),
            root / paths.PREPARED,
            out=out,
            work=paths.checkpoints(paths.BASE, root) / replicate,
            logs=report.with_suffix("") / replicate,
            trust_remote_code=params.trust_remote_code,
        )
        first = first or out
    paths.prune(paths.BASE, params.seeds, root)
    with atomic_path(report) as tmp:
        write_json(tmp, metrics)
    return metrics


def outputs(stage: str) -> list[Path]:
    """What `base` writes: its outs, metrics and plots, as dvc.yaml declares them."""
    return [paths.MODELS / paths.BASE, paths.train_report(paths.BASE)]


# --- the command -----------------------------------------------------------------------------


def command(params: ParamsFile = PARAMS) -> None:
    """Build the base model every run starts from (`base` in params).

    builtin: train a BPE tokenizer and a small Cohere model on the embedded world's corpus, then
    on its warm-up split. hf: resolve a hub id (local cache) or a path, check it, link it.
    Writes models/base/seed-<s> for every seed and reports/train/base.json.
    """
    loaded = load(params, "base", "train")
    run_stage(run, loaded)
    typer.echo(f"models/base: ready ({len(loaded.seeds)} seeds)")


COMMANDS = {"base": command}
