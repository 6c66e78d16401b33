"""Offline DPO with TRL's DPOTrainer, from the initial model, which is also the reference."""

from __future__ import annotations

from pathlib import Path

from accelerate import PartialState
from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from stages.core.config import PreferenceOptimization, Runtime
from stages.training.common import (
    callbacks,
    finish,
    kept,
    load,
    lora_config,
    resume_point,
    training_arguments,
)

JUDGED_PAIRS = 256


def dpo(
    init: Path,
    rows: list[dict],
    phase: PreferenceOptimization,
    runtime: Runtime,
    out: Path,
    checkpoint_dir: Path,
    logs: Path,
    log_prefix: str = "",
    append_logs: bool = False,
    trust_remote_code: bool = False,
) -> dict:
    """Train `init` on preference pairs (`{"prompt", "chosen", "rejected"}` conversations) and
    write the result to `out`; return the final metrics, with the reward accuracy and margin
    over a fixed sample of its training pairs (`pairs_rewards/accuracies`,
    `pairs_rewards/margins`).

    With LoRA, the reference is the initial model with the adapter disabled. The curves go to
    DVCLive in `logs`, named with `log_prefix`; `append_logs` keeps what `logs` holds.
    """
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
    # every pair costs nearly half as much as training on them, and on 256 pairs the reward
    # accuracy has a standard error of at most 0.03.
    judged_pairs = pairs.shuffle(seed=0).select(range(min(len(pairs), JUDGED_PAIRS)))
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=pairs,
        eval_dataset=judged_pairs,  # judged once, after training
        processing_class=tokenizer,
        peft_config=lora_config(runtime),
        callbacks=callbacks(logs, resume is not None or append_logs, log_prefix),
    )
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.evaluate()
    # TRL logs its reward metrics as `eval_*` whatever the prefix: here they judge the pairs.
    judged = {
        "pairs_" + key.removeprefix("eval_"): value
        for key, value in trainer.state.log_history[-1].items()
        if key.startswith("eval_")
    }
    return finish(trainer, tokenizer, out, init, runtime, checkpoint_dir) | kept(judged)
