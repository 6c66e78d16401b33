"""Stage `base`: the base model every run starts from.

`base.source: builtin` trains a tokenizer and a small Cohere model on the embedded world here;
`hf` resolves a hub id (from the local cache) or a local path, checks it, and links its files;
`gguf` converts a llama.cpp file into a safetensors folder. A real model with `warmup` is
fine-tuned on the world's warm-up split first.
"""

from __future__ import annotations

from pathlib import Path

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.io import atomic_path, write_json


def run(params: StudyConfig, root: Path = paths.ROOT) -> dict:
    from mixmerge.training.base_model import build_base

    report = paths.train_report(paths.BASE, root)
    metrics = build_base(
        params.base,
        params.train.runtime,
        root / paths.PREPARED,
        out=paths.folder(paths.BASE, None, root),
        work=paths.checkpoints(paths.BASE, root),
        logs=report.with_suffix(""),
        trust_remote_code=params.trust_remote_code,
    )
    with atomic_path(report) as tmp:
        write_json(tmp, metrics)
    return metrics
