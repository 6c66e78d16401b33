"""Supervised fine-tuning with TRL's SFTTrainer, full or LoRA, resumable."""

from __future__ import annotations

import logging
from pathlib import Path

from accelerate import PartialState
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from stages.core.config import Optimization, Runtime
from stages.training import checkpoints
from stages.training.common import (
    callbacks,
    final_metrics,
    load,
    lora_config,
    save_final,
    training_arguments,
)

log = logging.getLogger(__name__)


def sft(
    init: Path,
    rows: list[dict],
    phase: Optimization,
    runtime: Runtime,
    out: Path,
    checkpoint_dir: Path,
    logs: Path,
    language_modelling: bool = False,
) -> dict:
    """Train `init` on `rows` and write the result to `out`; return the final metrics.

    Rows are conversations (`{"messages": [...]}`), trained on the assistant's tokens only, or,
    with `language_modelling`, plain text (`{"text": ...}`) trained on every token.
    """
    state = PartialState(cpu=runtime.device == "cpu")
    settings = {"kind": "sft", "phase": phase.model_dump(), "runtime": runtime.model_dump()}
    expected = checkpoints.fingerprint(settings | {"data": checkpoints.digest(rows)}, init)
    if state.is_main_process:
        checkpoints.claim(checkpoint_dir, expected)
    state.wait_for_everyone()
    resume = checkpoints.newest(checkpoint_dir)
    if resume and state.is_main_process:
        log.info("resuming from %s", resume)

    model, tokenizer = load(init, runtime)
    args = training_arguments(
        SFTConfig,
        phase,
        runtime,
        checkpoint_dir,
        assistant_only_loss=not language_modelling,
        dataset_text_field="text",
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(runtime),
        callbacks=callbacks(logs, resume is not None, state.is_main_process),
    )
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    save_final(trainer, tokenizer, out, init, runtime)
    if state.is_main_process:
        checkpoints.clear(checkpoint_dir)
    return final_metrics(trainer)
