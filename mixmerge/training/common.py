"""What SFT and DPO share: arguments from params, loading, resuming, logging, the final save."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch
from accelerate import PartialState
from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback

from mixmerge import paths
from mixmerge.config.training import OptimizationConfig, RuntimeConfig
from mixmerge.core.errors import StageError
from mixmerge.core.fingerprint import data_digest, fingerprint
from mixmerge.core.io import publish, staging
from mixmerge.training import checkpoints

log = logging.getLogger(__name__)
# Metrics worth keeping as a run's DVC metrics (TRL logs more: FLOPs, throughput, logits).
KEPT_METRICS = (
    "loss", "train_loss", "learning_rate", "grad_norm", "mean_token_accuracy", "step", "epoch",
    "train_runtime", "num_tokens", "rewards/", "pairs_rewards/",
)  # fmt: skip


def training_arguments(
    config_class, phase: OptimizationConfig, runtime: RuntimeConfig, checkpoints: Path, **extra
):
    """A TRL config (`SFTConfig`, `DPOConfig`) from one phase's params and the runtime; `extra`
    adds or overrides arguments. Build it before loading the model: DeepSpeed ZeRO-3 partitions
    weights at load time only once it exists."""
    arguments = dict(
        output_dir=str(checkpoints),
        learning_rate=phase.learning_rate,
        num_train_epochs=phase.epochs,
        max_steps=phase.max_steps or -1,
        per_device_train_batch_size=phase.batch_size,
        gradient_accumulation_steps=phase.gradient_accumulation,
        max_length=phase.max_length,
        warmup_steps=phase.warmup_ratio,  # below 1: a share of the steps
        weight_decay=phase.weight_decay,
        adam_beta2=phase.adam_beta2,
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
        # A line per logging step (ProgressLines), not a bar that prints raw dicts: it reads
        # the same in a terminal, in DVC's log and in a cluster job's log.
        disable_tqdm=True,
    )
    return config_class(**(arguments | extra))


def load(path: Path, runtime: RuntimeConfig, trust_remote_code: bool = False):
    """The model and tokenizer of a folder. Full fine-tuning keeps float32 master weights (bf16
    and fp16 are autocast); LoRA freezes the base, which may then stay in bfloat16."""
    dtype = torch.bfloat16 if runtime.lora and runtime.precision == "bf16" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, trust_remote_code=trust_remote_code
    )
    return model, tokenizer


def lora_config(runtime: RuntimeConfig):
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


def resume_point(checkpoint_dir: Path, settings: dict, rows: list[dict], init: Path) -> Path | None:
    """The checkpoint to resume from, if `checkpoint_dir` holds one made from these very inputs
    (settings, rows and initial model); otherwise the folder is emptied for this run."""
    state = PartialState()
    expected = fingerprint(settings | {"data": data_digest(rows)}, init)
    if state.is_main_process:
        checkpoints.claim(checkpoint_dir, expected)
    state.wait_for_everyone()
    resume = checkpoints.newest(checkpoint_dir)
    if resume and state.is_main_process:
        log.info("resuming from %s", resume)
    return resume


class StopOnNonFiniteLoss(TrainerCallback):
    """Fail the run as soon as a logged loss is NaN or infinite: its weights are lost."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise StageError(
                f"the training loss became {loss} at step {state.global_step}; "
                "lower the learning rate or check the data"
            )


class LiveLog(TrainerCallback):
    """The training curves (loss, learning rate, DPO rewards...) to DVCLive, at the trainer's
    global step, so that a resumed run's curves continue where they stopped. The end-of-run
    summary (`train_*`) and evaluations (`eval_*`) go to the run's metrics instead. `prefix`
    names the curves of one replicate (`seed-1/loss`) in a folder its run's replicates share."""

    def __init__(self, folder: Path, resume: bool, prefix: str = ""):
        from dvclive import Live

        if resume:
            _drop_torn(Path(folder) / "metrics.json")
        self.live = Live(str(folder), dvcyaml=False, save_dvc_exp=False, resume=resume)
        self.prefix = prefix

    def on_log(self, args, state, control, logs=None, **kwargs):
        curves = {
            key: value
            for key, value in (logs or {}).items()
            if isinstance(value, (int, float)) and not key.startswith(("train_", "eval_"))
        }
        if curves:
            self.live.step = state.global_step
            for key, value in curves.items():
                self.live.log_metric(self.prefix + key, value)
            self.live.next_step()

    def on_train_end(self, args, state, control, **kwargs):
        self.live.end()


class ProgressLines(TrainerCallback):
    """At each logging step, one readable line: the run and seed, the step, the loss and about
    how long is left (`sft/mix0 seed-1: step 20/150, loss 0.382, about 1 min 5 s left`)."""

    def __init__(self, label: str):
        self.label = label
        self.start, self.first = 0.0, 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.first = time.monotonic(), state.global_step  # a resumed run's start

    def on_log(self, args, state, control, logs=None, **kwargs):
        if "loss" not in (logs or {}):
            return
        line = f"{self.label}: step {state.global_step}/{state.max_steps}, loss {logs['loss']:.4g}"
        done = state.global_step - self.first
        if done:
            left = (time.monotonic() - self.start) / done * (state.max_steps - state.global_step)
            line += f", about {_duration(left)} left"
        log.info(line)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def progress_lines(trainer):
    """`trainer`, printing ProgressLines (from `callbacks`) in place of its logs' dicts."""
    trainer.remove_callback(PrinterCallback)
    return trainer


def _drop_torn(summary: Path) -> None:
    """DVCLive rewrites its summary in place at every step, so a run killed then (preempted,
    requeued) can leave it torn, and DVCLive would fail to resume on it; the resumed run
    writes it again at its first step."""
    try:
        json.loads(summary.read_text(encoding="utf-8"))
    except FileNotFoundError:
        pass
    except ValueError:
        summary.unlink()


def callbacks(logs: Path, resume: bool, prefix: str = "") -> list:
    """The NaN guard; on the main process, DVCLive in the run's own folder and a progress line
    named after the run and the replicate (`prefix`)."""
    guards: list = [StopOnNonFiniteLoss()]
    if not PartialState().is_main_process:
        return guards
    # The run as its log folder names it under reports/train: `sft/mix0`, `base/seed-0/warmup`.
    run = Path(logs).as_posix().rpartition(f"{paths.TRAIN_REPORTS.as_posix()}/")[2]
    label = f"{run} {prefix.rstrip('/')}".strip()
    return [LiveLog(logs, resume, prefix), ProgressLines(label), *guards]


def save_final(trainer, tokenizer, out: Path, init: Path, runtime: RuntimeConfig) -> None:
    """Write the trained model to `out`, complete or not at all.

    Every process takes part (sharded weights are gathered to the main one), which alone
    publishes. A LoRA run keeps its adapter in `out/adapter` and writes the merged full model
    beside it, in the initial model's dtype: merging methods need full weights.
    """
    accelerator = trainer.accelerator
    folder = out.with_name(f".{out.name}.tmp")
    if accelerator.is_main_process:
        folder = staging(out)
    accelerator.wait_for_everyone()
    trainer.save_model(str(folder / "adapter" if runtime.lora else folder))
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    if runtime.lora:
        merged = merge_adapter(init, folder / "adapter")
        merged.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    for pickled in folder.rglob("training_args.bin"):  # model folders hold safetensors only
        pickled.unlink()
    publish(folder, out)


def merge_adapter(init: Path, adapter: Path):
    """The initial model with the adapter merged in, computed in float32 and cast back to the
    initial model's dtype."""
    from peft import PeftModel
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()  # this load is the main process's alone, never partitioned
    config = json.loads((init / "config.json").read_text())
    dtype = getattr(torch, config.get("dtype") or config.get("torch_dtype") or "float32")
    base = AutoModelForCausalLM.from_pretrained(init, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    return merged.to(dtype)


def finish(
    trainer, tokenizer, out: Path, init: Path, runtime: RuntimeConfig, checkpoint_dir: Path
) -> dict:
    """Save the model, drop the checkpoints, and return the run's final metrics."""
    save_final(trainer, tokenizer, out, init, runtime)
    if trainer.accelerator.is_main_process:
        checkpoints.clear(checkpoint_dir)
    return final_metrics(trainer)


def kept(entry: dict) -> dict:
    return {
        k: v for k, v in entry.items() if isinstance(v, (int, float)) and k.startswith(KEPT_METRICS)
    }


def final_metrics(trainer) -> dict:
    """The last logged value of every kept training metric of the run."""
    metrics: dict = {}
    for entry in trainer.state.log_history:
        metrics.update(kept(entry))
    return metrics
