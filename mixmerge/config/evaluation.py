"""The `evaluation` section: how models answer the eval prompts, who judges them, and the
bootstrap behind every interval."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, PositiveInt, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from mixmerge.config.common import Strict
from mixmerge.config.endpoint import EndpointConfig


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


class LLMJudgeConfig(EndpointConfig):
    """Any OpenAI-compatible endpoint as the judge."""

    kind: Literal["llm"]
    cache_dir: str = "cache/judge"


JudgeConfig = Annotated[Union[RuleJudgeConfig, LLMJudgeConfig], Field(discriminator="kind")]  # noqa: UP007


class HarmClassifierConfig(Strict):
    """A local safety classifier for the harm verdicts (the judge keeps the rest): a model
    folder or hub id, and the `style` of its answers.

    - generative: Llama Guard's (Inan et al., 2023), a first word `safe` or in `harmful_labels`;
    - polyguard: PolyGuard's (Kumar et al., 2025), a line `Harmful response: yes|no`;
    - qwen3guard: Qwen3Guard-Gen's (Qwen Team, 2025), a line `Safety: Safe|Unsafe|Controversial`,
      Controversial read as `controversial` says;
    - sequence: a sequence classifier's label, harmful when in `harmful_labels`.

    Llama Guard 3 covers neither Arabic nor Russian; PolyGuard (17 languages) and Qwen3Guard
    (119) cover both.
    """

    model: str
    style: Literal["generative", "polyguard", "qwen3guard", "sequence"] = "generative"
    harmful_labels: Annotated[list[str], Field(min_length=1)] = ["unsafe"]
    # Qwen3Guard's Controversial is harm that depends on the context; its report scores a strict
    # reading (Controversial is unsafe) beside a loose one. Strict by default: a study of
    # safety that read them as safe would undercount the harm it measures.
    controversial: Literal["harmful", "safe", "unknown"] = "harmful"
    batch_size: PositiveInt = 16
    device: Literal["cpu", "auto"] = "cpu"

    @field_validator("harmful_labels", "controversial")
    @classmethod
    def _read_by_the_style(cls, value, info: ValidationInfo):
        # A key the style never reads would be set in vain: say so rather than ignore it.
        readers = {"harmful_labels": ("generative", "sequence"), "controversial": ("qwen3guard",)}
        styles = readers[info.field_name]
        style = info.data.get("style")  # absent when the style itself was invalid
        if style is not None and style not in styles:
            raise PydanticCustomError(
                "unread_key",
                "style {style} does not read `{key}` (read by: {styles})",
                {"style": style, "key": info.field_name, "styles": ", ".join(styles)},
            )
        return value


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
