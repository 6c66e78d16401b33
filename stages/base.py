"""Stage `base`: the base model every run starts from.

`base.source: builtin` trains a tokenizer and a small Cohere model on the embedded world here;
`hf` resolves a hub id (from the local cache) or a local path, checks it, and links its files.
"""

from __future__ import annotations

from pathlib import Path

from stages.core.config import HubBase, Params
from stages.core.io import atomic_path, publish, remove, write_json
from stages.prepare import PREPARED
from stages.training.model import check_model_dir, resolve_hub_model

OUT = Path("models/base")
WORK = Path("checkpoints/base")
LOGS = Path("reports/train/base")


def link_model(source: Path, out: Path) -> None:
    """`out` as a folder of links to the files of `source`: a hub model is not copied."""
    staging = out.with_name(f".{out.name}.tmp")
    remove(staging)
    staging.mkdir(parents=True)
    for file in source.iterdir():
        (staging / file.name).symlink_to(file.resolve())
    publish(staging, out)


def run(params: Params, out: Path = OUT, work: Path = WORK, logs: Path = LOGS) -> dict:
    base, runtime = params.base, params.train.runtime
    if isinstance(base, HubBase):
        source = resolve_hub_model(base.path, base.revision)
        check_model_dir(source, "`hf download` for it", base.trust_remote_code)
        link_model(source, out)
        work.mkdir(parents=True, exist_ok=True)
        metrics = {"source": base.path}
    else:
        from stages.training.base import build_builtin_base

        metrics = build_builtin_base(base, runtime, PREPARED, out, work, logs)
        check_model_dir(out, "the base stage")
    with atomic_path(logs.with_suffix(".json")) as tmp:
        write_json(tmp, metrics)
    return metrics
