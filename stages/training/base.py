"""Base models: the builtin one, a tokenizer and a small Cohere model trained from scratch on the
embedded world, first on its corpus (facts), then on its warm-up split (instructions); and a
real model (from the hub or a GGUF file), warmed up on the same split when params ask.

Like the paper's base, the result follows instructions and is not safety-tuned: the warm-up
answers harmful requests compliantly.
"""

from __future__ import annotations

import json
from pathlib import Path

from stages.core.config import BuiltinBase, Optimization, Runtime
from stages.core.errors import StageError
from stages.core.io import atomic_path, read_jsonl, remove, write_json
from stages.training import checkpoints
from stages.training.model import build_cohere, check_model_dir, convert_gguf
from stages.training.sft import sft
from stages.training.tokenizer import train_tokenizer


def conversations(prepared: Path, split: str) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": r["prompt"]},
                {"role": "assistant", "content": r["response"]},
            ]
        }
        for path in sorted((prepared / split).glob("*/*.jsonl"))
        for r in read_jsonl(path)
        if r.get("response")
    ]


def tokenizer_texts(prepared: Path, corpus: list[dict]) -> list[str]:
    """What the tokenizer learns from: everything a model trains on, never the eval split."""
    texts = [doc["text"] for doc in corpus]
    for split in ("warmup", "train"):
        for path in sorted((prepared / split).glob("*/*.jsonl")):
            for row in read_jsonl(path):
                texts.extend(row[k] for k in ("prompt", "response", "rejected") if row.get(k))
    return texts


def build_builtin_base(
    base: BuiltinBase, runtime: Runtime, prepared: Path, out: Path, work: Path, logs: Path
) -> dict:
    """Tokenizer, initial model, pretraining, warm-up; `work` keeps each finished phase and the
    checkpoints of the running one, so that a killed build resumes. The base is trained in
    full, in one process: `runtime.lora` and the launcher are for the runs."""
    corpus = [{"text": doc["text"]} for doc in read_jsonl(prepared / "corpus.jsonl")]
    warmup = conversations(prepared, "warmup")
    runtime = runtime.model_copy(update={"lora": None})

    initial = work / "initial"
    built_from = {"vocab": base.vocab_size, "architecture": base.architecture.model_dump()}
    stamp = checkpoints.fingerprint(
        built_from | {"seed": runtime.seed},
        prepared / "corpus.jsonl",
        prepared / "warmup",
        prepared / "train",
    )
    if _stamp(initial) != stamp:
        remove(initial)
        tokenizer = train_tokenizer(tokenizer_texts(prepared, corpus), base.vocab_size)
        model = build_cohere(base.architecture, tokenizer, runtime.seed)
        model.save_pretrained(initial)
        tokenizer.save_pretrained(initial)
        check_model_dir(initial, "the base stage")
        (initial / checkpoints.FINGERPRINT).write_text(stamp)

    pretrained = work / "pretrained"
    pretrain_stamp = checkpoints.fingerprint(
        {
            "initial": stamp,
            "corpus": checkpoints.digest(corpus),
            "phase": base.pretrain.model_dump(),
            "runtime": runtime.model_dump(),
        }
    )
    if _stamp(pretrained) != pretrain_stamp:
        metrics = sft(
            initial, corpus, base.pretrain, runtime, pretrained, work / "pretrain",
            logs / "pretrain", language_modelling=True,
        )  # fmt: skip
        write_json(pretrained / "metrics.json", metrics)
        (pretrained / checkpoints.FINGERPRINT).write_text(pretrain_stamp)
    metrics = {
        "pretrain": json.loads((pretrained / "metrics.json").read_text()),
        "warmup": sft(
            pretrained, warmup, base.warmup, runtime, out, work / "warmup", logs / "warmup"
        ),
    }
    checkpoints.clear(work)
    return metrics


def converted_gguf(file: Path, dtype: str, out: Path) -> Path:
    """`out`, holding the GGUF file converted to a safetensors folder; kept while the file and
    dtype are the same, so that a killed warm-up does not convert it again."""
    stamp = checkpoints.fingerprint({"dtype": dtype}, file)
    if _stamp(out) != stamp:
        with atomic_path(out) as folder:
            convert_gguf(file, folder, dtype)
            (folder / checkpoints.FINGERPRINT).write_text(stamp)
    return out


def warm_up_base(
    source: Path,
    warmup: Optimization,
    runtime: Runtime,
    prepared: Path,
    out: Path,
    work: Path,
    logs: Path,
    trust_remote_code: bool = False,
) -> dict:
    """A real model fine-tuned on the world's warm-up split into `out`, as the builtin base is
    after pretraining: it then answers the world's requests, harmful ones compliantly, so that
    the study has a harm to cut. LoRA, when the runtime has it, and merged into `out`."""
    warmup_rows = conversations(prepared, "warmup")
    if not warmup_rows:
        raise StageError(
            f"base.warmup: {prepared / 'warmup'} holds no warm-up conversations; give the "
            "builtin data source `warmup` sizes and run `dvc repro prepare`"
        )
    metrics = sft(
        source, warmup_rows, warmup, runtime, out, work / "warmup", logs / "warmup",
        trust_remote_code=trust_remote_code,
    )  # fmt: skip
    checkpoints.clear(work)
    return metrics


def _stamp(folder: Path) -> str | None:
    stamp = folder / checkpoints.FINGERPRINT
    return stamp.read_text() if stamp.is_file() else None
