"""The builtin base: a tokenizer and a small Cohere model trained from scratch on the embedded
world, first on its corpus (facts), then on its warm-up split (instructions).

Like the paper's base, the result follows instructions and is not safety-tuned: the warm-up
answers harmful requests compliantly.
"""

from __future__ import annotations

import json
from pathlib import Path

from mixmerge.config.base_model import BuiltinBaseConfig
from mixmerge.config.training import RuntimeConfig
from mixmerge.core.fingerprint import data_digest, fingerprint
from mixmerge.core.io import read_jsonl, remove, write_json
from mixmerge.training import checkpoints
from mixmerge.training.model import build_cohere, check_model_dir
from mixmerge.training.sft import sft
from mixmerge.training.tokenizer import train_tokenizer


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
    base: BuiltinBaseConfig,
    runtime: RuntimeConfig,
    prepared: Path,
    out: Path,
    work: Path,
    logs: Path,
) -> dict:
    """Tokenizer, initial model, pretraining, warm-up; `work` keeps each finished phase and the
    checkpoints of the running one, so that a killed build resumes. The base is trained in
    full, in one process: `runtime.lora` and the launcher are for the runs."""
    corpus = [{"text": doc["text"]} for doc in read_jsonl(prepared / "corpus.jsonl")]
    warmup = conversations(prepared, "warmup")
    runtime = runtime.model_copy(update={"lora": None})

    initial = work / "initial"
    built_from = {"vocab": base.vocab_size, "architecture": base.architecture.model_dump()}
    stamp = fingerprint(
        built_from | {"seed": runtime.seed},
        prepared / "corpus.jsonl",
        prepared / "warmup",
        prepared / "train",
    )
    if stamp_of(initial) != stamp:
        remove(initial)
        tokenizer = train_tokenizer(tokenizer_texts(prepared, corpus), base.vocab_size)
        model = build_cohere(base.architecture, tokenizer, runtime.seed)
        model.save_pretrained(initial)
        tokenizer.save_pretrained(initial)
        check_model_dir(initial, "the base stage")
        (initial / checkpoints.FINGERPRINT).write_text(stamp)

    pretrained = work / "pretrained"
    pretrain_stamp = fingerprint(
        {
            "initial": stamp,
            "corpus": data_digest(corpus),
            "phase": base.pretrain.model_dump(),
            "runtime": runtime.model_dump(),
        }
    )
    if stamp_of(pretrained) != pretrain_stamp:
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


def stamp_of(folder: Path) -> str | None:
    stamp = folder / checkpoints.FINGERPRINT
    return stamp.read_text() if stamp.is_file() else None
