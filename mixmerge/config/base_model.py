"""The `base` section: the model every run starts from (built here, from the hub, or from a
GGUF file)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator
from pydantic_core import PydanticCustomError

from mixmerge.config.common import Strict
from mixmerge.config.training import OptimizationConfig


class BuiltinArchitectureConfig(Strict):
    """A small CohereForCausalLM: Aya's architecture, without QK-norm as in Aya."""

    hidden_size: PositiveInt = 128
    num_hidden_layers: PositiveInt = 4
    num_attention_heads: PositiveInt = 4
    num_key_value_heads: PositiveInt = 4
    intermediate_size: PositiveInt = 384
    max_position_embeddings: PositiveInt = 256

    @model_validator(mode="after")
    def _heads_divide(self) -> BuiltinArchitectureConfig:
        if self.hidden_size % self.num_attention_heads:
            raise PydanticCustomError(
                "heads", "`hidden_size` must be a multiple of `num_attention_heads`"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise PydanticCustomError(
                "heads", "`num_attention_heads` must be a multiple of `num_key_value_heads`"
            )
        return self


class BuiltinBaseConfig(Strict):
    """A base model built here: a BPE tokenizer and a small Cohere model trained on the
    embedded world's corpus, then on its warm-up split (helpful, and not safe)."""

    kind: Literal["builtin"]
    vocab_size: Annotated[int, Field(ge=300)] = 4096
    architecture: BuiltinArchitectureConfig = BuiltinArchitectureConfig()
    pretrain: OptimizationConfig
    warmup: OptimizationConfig


class HubBaseConfig(Strict):
    """A base model from the hub (by id, read from the local cache) or a local directory.
    `warmup`, when set, first fine-tunes it on the embedded world's warm-up split, as the
    builtin base is: a real model then complies in the world's terms, so that the world's rule
    judge sees its harm."""

    kind: Literal["hf"]
    path: str
    revision: str | None = None
    trust_remote_code: bool = False
    warmup: OptimizationConfig | None = None


class GgufBaseConfig(Strict):
    """A base model from a llama.cpp `.gguf` file, dequantised once into a safetensors model
    folder in `dtype`; `warmup` as for a hub base."""

    kind: Literal["gguf"]
    path: str
    dtype: Literal["float32", "bfloat16"] = "float32"
    warmup: OptimizationConfig | None = None

    @field_validator("path")
    @classmethod
    def _gguf_file(cls, path: str) -> str:
        if not path.endswith(".gguf"):
            raise PydanticCustomError("gguf_path", "a GGUF base is a `.gguf` file")
        return path


BaseModelConfig = Annotated[
    BuiltinBaseConfig | HubBaseConfig | GgufBaseConfig, Field(discriminator="kind")
]  # noqa: UP007
