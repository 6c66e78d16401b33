"""The `syntheses` section: `synthesize@<name>` stages, each turning the prompts of a prompt-only
safety source into SFT targets and preference pairs. Their output is read by a `generated`
data source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, Field, NonNegativeInt, PositiveInt
from pydantic_core import PydanticCustomError

from mixmerge import paths
from mixmerge.config.common import Name, Strict
from mixmerge.config.endpoint import EndpointConfig
from mixmerge.config.evaluation import GenerationConfig, JudgeConfig


class EndpointWriterConfig(EndpointConfig):
    """A teacher behind any OpenAI-compatible endpoint, given the writing instructions of
    `mixmerge/synthesis/prompts.py` (a safe answer, a harmful one, a rephrasing)."""

    kind: Literal["llm"]
    cache_dir: str = "cache/teacher"


def _not_built_here(model: str) -> str:
    if Path(model).parts[:1] == paths.MODELS.parts:
        raise PydanticCustomError(
            "model_built_here",
            "the study's own models are trained after `prepare`, which reads the synthesis: "
            "write with a model folder from elsewhere, or a hub id",
        )
    return model


class LocalWriterConfig(Strict):
    """A local model (a folder, or a hub id from the local cache) through the generation
    backends, given the prompt alone: a safety-tuned model writes the safe side, a base model
    that was never safety-tuned the harmful side. Not a model the study builds: `prepare`
    reads the synthesis, and every model is trained after it."""

    kind: Literal["local"]
    model: Annotated[str, AfterValidator(_not_built_here)]
    generation: GenerationConfig = GenerationConfig(max_new_tokens=256)
    trust_remote_code: bool = False
    cache_dir: str = "cache/teacher"


WriterConfig = Annotated[
    Union[EndpointWriterConfig, LocalWriterConfig],  # noqa: UP007
    Field(discriminator="kind"),
]


class SynthesisConfig(Strict):
    """Answers for the train prompts of data source `source` (its eval prompts are never seen).
    `safe` writes the chosen side and SFT target, `harmful` the rejected side (to a benign
    prompt, an over-refusal); with `rephrase` N, `safe`'s writer first writes N new prompts per
    seed, which are answered like the seeds. `judge` judges every answer: a
    safe answer must be judged not harmful (and, to a benign prompt, not a refusal), a harmful
    one harmful (to a benign prompt: a refusal, the over-refusal to unlearn); what fails is
    dropped and counted per language and reason."""

    source: Name
    safe: WriterConfig
    harmful: WriterConfig
    judge: JudgeConfig
    rephrase: NonNegativeInt = 0
    max_per_language: PositiveInt | None = None
