"""Stage `base`: the base model every run starts from.

`base.source: builtin` trains a tokenizer and a small Cohere model on the embedded world here;
`hf` resolves a hub id (from the local cache) or a local path, checks it, and links its files;
`gguf` converts a llama.cpp file into a safetensors folder. A real model with `warmup` is
fine-tuned on the world's warm-up split first.
"""

from __future__ import annotations

from pathlib import Path

from stages.core.config import BuiltinBase, GgufBase, Params
from stages.core.io import atomic_path, write_json
from stages.prepare import PREPARED
from stages.training.model import check_model_dir, convert_gguf, resolve_hub_model

OUT = Path("models/base")
WORK = Path("checkpoints/base")
LOGS = Path("reports/train/base")


# What a model folder needs; a hub repository may also hold pickled or original-format weights.
MODEL_FILES = ("*.json", "*.safetensors", "*.jinja", "*.model", "*.txt", "*.tiktoken")


def link_model(source: Path, out: Path) -> None:
    """`out` as a folder of links to the model files of `source`, which is not copied."""
    with atomic_path(out) as folder:
        folder.mkdir()
        for pattern in MODEL_FILES:
            for file in source.glob(pattern):
                (folder / file.name).symlink_to(file.resolve())


def run(params: Params, out: Path = OUT, work: Path = WORK, logs: Path = LOGS) -> dict:
    base, runtime = params.base, params.train.runtime
    if isinstance(base, BuiltinBase):
        from stages.training.base import build_builtin_base

        metrics = build_builtin_base(base, runtime, PREPARED, out, work, logs)
    else:
        from stages.training.base import converted_gguf, warm_up_base

        work.mkdir(parents=True, exist_ok=True)
        metrics = {"source": base.path}
        trust = params.trust_remote_code
        if isinstance(base, GgufBase) and base.warmup is None:
            with atomic_path(out) as folder:
                convert_gguf(Path(base.path), folder, base.dtype)
                check_model_dir(folder, "the base stage")
        else:
            if isinstance(base, GgufBase):
                source = converted_gguf(Path(base.path), base.dtype, work / "converted")
            else:
                source = resolve_hub_model(base.path, base.revision)
            check_model_dir(source, "`hf download` for it", trust)
            if base.warmup is None:
                link_model(source, out)
            else:
                metrics["warmup"] = warm_up_base(
                    source, base.warmup, runtime, PREPARED, out, work, logs, trust
                )
    with atomic_path(logs.with_suffix(".json")) as tmp:
        write_json(tmp, metrics)
    return metrics
