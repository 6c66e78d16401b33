"""The `evaluation` section: how models answer the eval prompts, who judges them, and the
bootstrap behind every interval."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, PositiveInt, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from mixmerge.config.common import Strict


class GenerationConfig(Strict):
    """How every model answers the eval prompts: greedy unless `do_sample`."""

    backend: Literal["hf", "vllm"] = "hf"
    device: Literal["cpu", "auto"] = "cpu"
    batch_size: PositiveInt = 64
    max_new_tokens: PositiveInt = 64
    do_sample: bool = False
    temperature: Annotated[float, Field(gt=0)] = 1.0
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    seed: int = 0


class RuleJudgeConfig(Strict):
    kind: Literal["rule"]


class LLMJudgeConfig(Strict):
    """Any OpenAI-compatible endpoint. The key is read from the variable `api_key_env` names
    (null for keyless local servers); it is never written anywhere."""

    kind: Literal["llm"]
    base_url: str
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    max_concurrency: PositiveInt = 8
    # Tries after the first, made by the openai client: it waits what the server's Retry-After
    # says, or backs off exponentially on its own fixed schedule (no base or cap to set here).
    max_retries: Annotated[int, Field(ge=0)] = 5
    timeout_s: Annotated[float, Field(gt=0)] = 120.0
    max_tokens: PositiveInt = 1024
    cache_dir: str = "cache/judge"


JudgeConfig = Annotated[Union[RuleJudgeConfig, LLMJudgeConfig], Field(discriminator="kind")]  # noqa: UP007


class HarmClassifierConfig(Strict):
    """A local safety classifier for the harm verdicts (the judge keeps the rest): a model
    folder or hub id. generative: Llama Guard style; sequence: a sequence classifier."""

    model: str
    style: Literal["generative", "sequence"] = "generative"
    harmful_labels: Annotated[list[str], Field(min_length=1)] = ["unsafe"]
    batch_size: PositiveInt = 16
    device: Literal["cpu", "auto"] = "cpu"


class BootstrapConfig(Strict):
    samples: Annotated[int, Field(ge=100)] = 1000
    seed: int = 0
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95


class EvaluationConfig(Strict):
    generation: GenerationConfig = GenerationConfig()
    judge: JudgeConfig = Field(RuleJudgeConfig(kind="rule"), validate_default=True)
    harm_classifier: HarmClassifierConfig | None = None
    bootstrap: BootstrapConfig = BootstrapConfig()
    # Past this share of verdicts the judge could not give (an endpoint that went down, a
    # judge that answers no label), the stage fails rather than write metrics.
    max_unknown_share: Annotated[float, Field(ge=0, le=1)] = 0.05

    @field_validator("judge")
    @classmethod
    def _judges_the_sources(cls, judge: RuleJudgeConfig | LLMJudgeConfig, info: ValidationInfo):
        others = (info.context or {}).get("judged_sources") or []
        if judge.kind == "rule" and others:
            raise PydanticCustomError(
                "rule_judge",
                "the rule judge knows only the embedded world's answers, and sources "
                "{sources} are not builtin: judge them with `kind: llm`",
                {"sources": ", ".join(others)},
            )
        return judge
