"""The `train` section (how SFT and DPO optimise, and where runs execute) and the `sft` and
`dpo` tables of runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mixmerge.config.common import MixtureName, ModelRef, Strict


class OptimizationConfig(Strict):
    """One training phase. Steps come from `epochs` unless `max_steps` is set; `warmup_ratio` is
    the share of steps with a rising learning rate; `adam_beta2` is AdamW's second-moment decay
    (0.95 forgets stale gradient scales faster than the default 0.999, as small models trained
    for a few hundred steps need); `group_by_length` batches examples of similar length together
    (less padding, so faster, at the cost of batches less random, which a model may learn less
    from)."""

    learning_rate: PositiveFloat
    epochs: PositiveFloat = 1.0
    max_steps: PositiveInt | None = None
    batch_size: PositiveInt = 16
    gradient_accumulation: PositiveInt = 1
    max_length: PositiveInt = 256
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.0
    weight_decay: NonNegativeFloat = 0.0
    adam_beta2: Annotated[float, Field(gt=0, lt=1)] = 0.999
    max_grad_norm: PositiveFloat = 1.0
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    group_by_length: bool = False


# TRL's loss types, but `exo_pair`, which needs label smoothing this schema does not expose.
DPO_LOSSES = Literal[
    "sigmoid", "hinge", "ipo", "nca_pair", "robust", "bco_pair", "sppo_hard",
    "aot", "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm",
]  # fmt: skip


class PreferenceOptimizationConfig(OptimizationConfig):
    """DPO (Rafailov et al., 2023), offline, against the initial model as reference: `beta`
    bounds the drift from it; several `loss_type`s are summed. After training, the reward
    accuracy and margin are judged on a fixed sample of `judged_pairs` training pairs (on 256,
    the accuracy's standard error is at most 0.03; each pair costs two forward passes of both
    models)."""

    beta: PositiveFloat = 0.1
    loss_type: Annotated[list[DPO_LOSSES], Field(min_length=1)] = ["sigmoid"]
    judged_pairs: PositiveInt = 256

    @field_validator("group_by_length")
    @classmethod
    def _ungrouped(cls, grouped: bool) -> bool:
        if grouped:
            raise PydanticCustomError(
                "dpo_group_by_length",
                "DPO cannot batch pairs by length (the trainer's sampler needs `input_ids`, "
                "which TRL's preference data do not have); set it false",
            )
        return grouped


class LoraAdapterConfig(Strict):
    """LoRA adapters (Hu et al., 2021) instead of full fine-tuning."""

    r: PositiveInt = 16
    alpha: PositiveFloat = 32
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class RuntimeConfig(Strict):
    """Where and how every training run executes; none of this changes what is learnt on one
    device, except `precision`, `lora` and `seed`. `seed` is no params key: each stage sets it
    to the seed of the replicate it trains (params `seeds`), the base's included."""

    device: Literal["cpu", "auto"] = "cpu"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    launcher: Literal["python", "accelerate"] = "python"
    accelerate_config: str | None = None
    seed: int = 0
    lora: LoraAdapterConfig | None = None
    activation_checkpointing: bool = False
    save_steps: PositiveInt = 100
    logging_steps: PositiveInt = 10

    @model_validator(mode="before")
    @classmethod
    def _no_seed(cls, data):
        if isinstance(data, dict) and "seed" in data:
            raise PydanticCustomError(
                "seed", "every replicate trains from its seed in `seeds`: remove `seed` here"
            )
        return data

    @model_validator(mode="after")
    def _launchable(self) -> RuntimeConfig:
        if self.launcher == "accelerate":
            if self.accelerate_config is None:
                raise PydanticCustomError(
                    "accelerate_config", "`launcher: accelerate` needs `accelerate_config`"
                )
            if not Path(self.accelerate_config).is_file():
                raise PydanticCustomError(
                    "accelerate_config",
                    "no accelerate config at {path}",
                    {"path": self.accelerate_config},
                )
        if self.device == "cpu" and self.precision == "fp16":
            raise PydanticCustomError("precision", "fp16 needs a GPU; use fp32 or bf16 on a CPU")
        return self


class TrainConfig(Strict):
    runtime: RuntimeConfig = RuntimeConfig()
    sft: OptimizationConfig
    dpo: PreferenceOptimizationConfig


class RunConfig(Strict):
    """A training run: its mixture and the model it starts from (`base`, `sft/<run>`,
    `dpo/<run>` or `merge/<merge>`)."""

    mixture: MixtureName
    init: ModelRef
