"""Offline DPO with TRL's DPOTrainer, from the initial model, which is also the reference."""

from __future__ import annotations

from pathlib import Path

from accelerate import PartialState
from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from mixmerge.config.training import PreferenceOptimizationConfig, RuntimeConfig
from mixmerge.training.common import (
    callbacks,
    finish,
    kept,
    load,
    lora_config,
    progress_lines,
    resume_point,
    training_arguments,
)


def dpo_trainer(
    init: Path,
    rows: list[dict],
    phase: PreferenceOptimizationConfig,
    runtime: RuntimeConfig,
    checkpoint_dir: Path,
    logs: Path,
    log_prefix: str = "",
    append_logs: bool = False,
    trust_remote_code: bool = False,
) -> tuple[DPOTrainer, object, Path | None]:
    """The trainer for `dpo`, its tokenizer, and the checkpoint it resumes from (or None); its
    `train_dataset` is tokenized: `prompt_ids` (the template's prompt, with the generation
    prompt), `chosen_ids` and `rejected_ids` (what the template writes after it)."""
    PartialState(cpu=runtime.device == "cpu")
    settings = {"kind": "dpo", "phase": phase.model_dump(), "runtime": runtime.model_dump()}
    resume = resume_point(checkpoint_dir, settings, rows, init)
    args = training_arguments(
        DPOConfig,
        phase,
        runtime,
        checkpoint_dir,
        beta=phase.beta,
        loss_type=list(phase.loss_type),
        per_device_eval_batch_size=phase.batch_size,
    )
    model, tokenizer = load(init, runtime, trust_remote_code)
    pairs = Dataset.from_list(rows)
    # The same pairs for every seed and run of a mixture: a judged sample, because judging
    # every pair costs nearly half as much as training on them.
    judged_pairs = pairs.shuffle(seed=0).select(range(min(len(pairs), phase.judged_pairs)))
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=pairs,
        eval_dataset=judged_pairs,  # judged once, after training
        processing_class=tokenizer,
        peft_config=lora_config(runtime),
        callbacks=callbacks(logs, resume is not None or append_logs, log_prefix),
    )
    return progress_lines(trainer), tokenizer, resume


def dpo(
    init: Path,
    rows: list[dict],
    phase: PreferenceOptimizationConfig,
    runtime: RuntimeConfig,
    out: Path,
    checkpoint_dir: Path,
    logs: Path,
    log_prefix: str = "",
    append_logs: bool = False,
    trust_remote_code: bool = False,
) -> dict:
    """Train `init` on preference pairs (`{"prompt", "chosen", "rejected"}` conversations) and
    write the result to `out`; return the final metrics, with the reward accuracy and margin
    over a fixed sample of `phase.judged_pairs` training pairs (`pairs_rewards/accuracies`,
    `pairs_rewards/margins`).

    With LoRA, the reference is the initial model with the adapter disabled. The curves go to
    DVCLive in `logs`, named with `log_prefix`; `append_logs` keeps what `logs` holds.
    """
    trainer, tokenizer, resume = dpo_trainer(
        init, rows, phase, runtime, checkpoint_dir, logs, log_prefix, append_logs,
        trust_remote_code,
    )  # fmt: skip
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.evaluate()
    # TRL logs its reward metrics as `eval_*` whatever the prefix: here they judge the pairs.
    judged = {
        "pairs_" + key.removeprefix("eval_"): value
        for key, value in trainer.state.log_history[-1].items()
        if key.startswith("eval_")
    }
    return finish(trainer, tokenizer, out, init, runtime, checkpoint_dir) | kept(judged)
