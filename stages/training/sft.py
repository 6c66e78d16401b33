"""Supervised fine-tuning with TRL's SFTTrainer, full or LoRA, resumable."""

from __future__ import annotations

from pathlib import Path

from accelerate import PartialState
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from stages.core.config import Optimization, Runtime
from stages.training.common import (
    callbacks,
    finish,
    load,
    lora_config,
    resume_point,
    training_arguments,
)


def sft(
    init: Path,
    rows: list[dict],
    phase: Optimization,
    runtime: Runtime,
    out: Path,
    checkpoint_dir: Path,
    logs: Path,
    log_prefix: str = "",
    append_logs: bool = False,
    language_modelling: bool = False,
    trust_remote_code: bool = False,
) -> dict:
    """Train `init` on `rows` and write the result to `out`; return the final metrics.

    Rows are conversations (`{"messages": [...]}`), trained on the assistant's tokens only, or,
    with `language_modelling`, plain text (`{"text": ...}`) trained on every token. The curves
    go to DVCLive in `logs`, named with `log_prefix`; `append_logs` keeps what `logs` holds.
    """
    PartialState(cpu=runtime.device == "cpu")
    settings = {"kind": "sft", "phase": phase.model_dump(), "runtime": runtime.model_dump()}
    resume = resume_point(checkpoint_dir, settings, rows, init)
    args = training_arguments(
        SFTConfig, phase, runtime, checkpoint_dir, assistant_only_loss=not language_modelling
    )
    model, tokenizer = load(init, runtime, trust_remote_code)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(runtime),
        callbacks=callbacks(logs, resume is not None or append_logs, log_prefix),
    )
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return finish(trainer, tokenizer, out, init, runtime, checkpoint_dir)
