"""Supervised fine-tuning with TRL's SFTTrainer, full or LoRA, resumable."""

from __future__ import annotations

from pathlib import Path

from accelerate import PartialState
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from mixmerge.config.training import OptimizationConfig, RuntimeConfig
from mixmerge.training.common import (
    callbacks,
    finish,
    load,
    lora_config,
    progress_lines,
    resume_point,
    training_arguments,
)


def prompt_completion(messages: list[dict]) -> dict:
    """A conversation in TRL's prompt-completion form: the loss falls on the final assistant
    turn (and the end-of-turn tokens the template puts after it), whatever the chat template.
    Assistant-only loss would need `{% generation %}` markers, which few templates have."""
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def sft_trainer(
    init: Path,
    rows: list[dict],
    phase: OptimizationConfig,
    runtime: RuntimeConfig,
    checkpoint_dir: Path,
    logs: Path,
    log_prefix: str = "",
    append_logs: bool = False,
    language_modelling: bool = False,
    trust_remote_code: bool = False,
) -> tuple[SFTTrainer, object, Path | None]:
    """The trainer for `sft`, its tokenizer, and the checkpoint it resumes from (or None); its
    `train_dataset` is tokenized, with labels of -100 wherever no loss is computed."""
    PartialState(cpu=runtime.device == "cpu")
    settings = {"kind": "sft", "phase": phase.model_dump(), "runtime": runtime.model_dump()}
    resume = resume_point(checkpoint_dir, settings, rows, init)
    args = training_arguments(
        SFTConfig, phase, runtime, checkpoint_dir, completion_only_loss=not language_modelling
    )
    model, tokenizer = load(init, runtime, trust_remote_code)
    examples = rows if language_modelling else [prompt_completion(r["messages"]) for r in rows]
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=lora_config(runtime),
        callbacks=callbacks(logs, resume is not None or append_logs, log_prefix),
    )
    return progress_lines(trainer), tokenizer, resume


def sft(
    init: Path,
    rows: list[dict],
    phase: OptimizationConfig,
    runtime: RuntimeConfig,
    out: Path,
    checkpoint_dir: Path,
    logs: Path,
    log_prefix: str = "",
    append_logs: bool = False,
    language_modelling: bool = False,
    trust_remote_code: bool = False,
) -> dict:
    """Train `init` on `rows` and write the result to `out`; return the final metrics.

    Rows are conversations (`{"messages": [...]}`), trained on the final assistant turn only,
    or, with `language_modelling`, plain text (`{"text": ...}`) trained on every token. The
    curves go to DVCLive in `logs`, named with `log_prefix`; `append_logs` keeps what `logs`
    holds.
    """
    trainer, tokenizer, resume = sft_trainer(
        init, rows, phase, runtime, checkpoint_dir, logs, log_prefix, append_logs,
        language_modelling, trust_remote_code,
    )  # fmt: skip
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return finish(trainer, tokenizer, out, init, runtime, checkpoint_dir)
