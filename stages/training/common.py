"""What SFT and DPO share: arguments from params, loading, logging, and the final save."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from stages.core.config import Optimization, Runtime
from stages.core.errors import StageError
from stages.core.io import publish, remove

# Mixed precision keeps fp32 weights for fp16 (its gradients need scaling); bf16 trains in bf16.
WEIGHT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float32}


def training_arguments(
    config_class, phase: Optimization, runtime: Runtime, checkpoints: Path, **extra
):
    """A TRL config (`SFTConfig`, `DPOConfig`) from one phase's params and the runtime; `extra`
    adds or overrides arguments."""
    arguments = dict(
        output_dir=str(checkpoints),
        learning_rate=phase.learning_rate,
        num_train_epochs=phase.epochs,
        max_steps=phase.max_steps or -1,
        per_device_train_batch_size=phase.batch_size,
        gradient_accumulation_steps=phase.gradient_accumulation,
        max_length=phase.max_length,
        warmup_steps=phase.warmup,  # below 1: a share of the steps
        weight_decay=phase.weight_decay,
        max_grad_norm=phase.max_grad_norm,
        lr_scheduler_type=phase.scheduler,
        train_sampling_strategy="group_by_length" if phase.group_by_length else "random",
        seed=runtime.seed,
        data_seed=runtime.seed,
        # TRL defaults to bf16 and activation checkpointing: neither is free on a CPU.
        use_cpu=runtime.device == "cpu",
        bf16=runtime.precision == "bf16",
        fp16=runtime.precision == "fp16",
        activation_checkpointing=runtime.activation_checkpointing,
        save_strategy="steps",
        save_steps=runtime.save_steps,
        save_total_limit=1,
        logging_steps=runtime.logging_steps,
        logging_nan_inf_filter=False,  # a NaN loss must be seen, not averaged away
        report_to=[],  # DVCLive is attached explicitly, to the run's own folder
    )
    return config_class(**(arguments | extra))


def load(path: Path, runtime: Runtime, trust_remote_code: bool = False):
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=WEIGHT_DTYPES[runtime.precision], trust_remote_code=trust_remote_code
    )
    return model, tokenizer


def lora_config(runtime: Runtime):
    if runtime.lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=runtime.lora.r,
        lora_alpha=runtime.lora.alpha,
        lora_dropout=runtime.lora.dropout,
        target_modules=runtime.lora.target_modules,
        task_type="CAUSAL_LM",
    )


class StopOnNonFiniteLoss(TrainerCallback):
    """Fail the run as soon as a logged loss is NaN or infinite: its weights are lost."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise StageError(
                f"the training loss became {loss} at step {state.global_step}; "
                "lower the learning rate or check the data"
            )


def callbacks(logs: Path, resume: bool, is_main: bool) -> list:
    """DVCLive in the run's own folder (its metrics.json is the run's DVC metrics), and the
    NaN guard."""
    guards: list = [StopOnNonFiniteLoss()]
    if not is_main:
        return guards
    from dvclive import Live
    from transformers.integrations import DVCLiveCallback

    live = Live(str(logs), dvcyaml=False, save_dvc_exp=False, resume=resume)
    return [DVCLiveCallback(live=live), *guards]


def save_final(trainer, tokenizer, out: Path, init: Path, runtime: Runtime) -> None:
    """Write the trained model to `out`, complete or not at all.

    Every process takes part (sharded weights are gathered to the main one), which alone
    publishes. A LoRA run keeps its adapter in `out/adapter` and writes the merged full model
    beside it: merging methods need full weights.
    """
    accelerator = trainer.accelerator
    staging = out.with_name(f".{out.name}.tmp")
    if accelerator.is_main_process:
        remove(staging)
    accelerator.wait_for_everyone()
    trainer.save_model(str(staging / "adapter" if runtime.lora else staging))
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    if runtime.lora:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(init, dtype=WEIGHT_DTYPES[runtime.precision])
        merged = PeftModel.from_pretrained(base, staging / "adapter").merge_and_unload()
        merged.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    for pickled in staging.rglob("training_args.bin"):  # model folders hold safetensors only
        pickled.unlink()
    publish(staging, out)


def final_metrics(trainer) -> dict:
    """The last logged value of every training metric of the run."""
    metrics: dict = {}
    for entry in trainer.state.log_history:
        metrics.update(
            {
                k: v
                for k, v in entry.items()
                if isinstance(v, (int, float)) and not k.startswith("eval_")
            }
        )
    return metrics
