"""Offline DPO with TRL's DPOTrainer, from the initial model, which is also the reference."""

from __future__ import annotations

import logging
from pathlib import Path

from accelerate import PartialState
from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from stages.core.config import PreferenceOptimization, Runtime
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


def dpo(
    init: Path,
    rows: list[dict],
    phase: PreferenceOptimization,
    runtime: Runtime,
    out: Path,
    checkpoint_dir: Path,
    logs: Path,
) -> dict:
    """Train `init` on preference pairs (`{"prompt", "chosen", "rejected"}` conversations) and
    write the result to `out`; return the final metrics, with the reward accuracy and margin
    over every training pair (`pairs_rewards/accuracies`, `pairs_rewards/margins`)."""
    state = PartialState(cpu=runtime.device == "cpu")
    settings = {"kind": "dpo", "phase": phase.model_dump(), "runtime": runtime.model_dump()}
    expected = checkpoints.fingerprint(settings | {"data": checkpoints.digest(rows)}, init)
    if state.is_main_process:
        checkpoints.claim(checkpoint_dir, expected)
    state.wait_for_everyone()
    resume = checkpoints.newest(checkpoint_dir)
    if resume and state.is_main_process:
        log.info("resuming from %s", resume)

    model, tokenizer = load(init, runtime)
    args = training_arguments(
        DPOConfig,
        phase,
        runtime,
        checkpoint_dir,
        beta=phase.beta,
        loss_type=list(phase.loss_type),
        per_device_eval_batch_size=phase.batch_size,
    )
    pairs = Dataset.from_list(rows)
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=pairs,
        eval_dataset=pairs,  # judged once, after training, on every pair it learnt from
        processing_class=tokenizer,
        peft_config=lora_config(runtime),
        callbacks=callbacks(logs, resume is not None, state.is_main_process),
    )
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.evaluate()
    # TRL logs its reward metrics as `eval_*` whatever the prefix: here they judge the pairs.
    judged = {
        "pairs_" + key.removeprefix("eval_"): value
        for key, value in trainer.state.log_history[-1].items()
        if key.startswith("eval_")
    }
    save_final(trainer, tokenizer, out, init, runtime)
    if state.is_main_process:
        checkpoints.clear(checkpoint_dir)
    return final_metrics(trainer) | judged
