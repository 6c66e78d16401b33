"""The `translations` section: `translate@<name>` stages, each translating one data source's
records into the study's languages. Their output is read by a `generated` data source."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import AfterValidator, Field, PositiveInt
from pydantic_core import PydanticCustomError

from mixmerge.config.common import Name, Strict, StudyLanguages, unique_items
from mixmerge.config.endpoint import EndpointConfig

Field_ = Literal["prompt", "response", "chosen", "rejected"]


def _with_prompt(fields: list[str]) -> list[str]:
    if "prompt" not in fields:
        raise PydanticCustomError(
            "no_prompt", "a translation translates the prompt: list `prompt` among the fields"
        )
    return fields


class MTTranslatorConfig(Strict):
    """A translation model through transformers: the NLLB-200 family (Costa-jussà et al., 2022,
    arXiv 2207.04672; the paper used NLLB-3.3B) or M2M100 (Fan et al., 2020, arXiv 2010.11125),
    a model folder or hub id. `codes`: how the model names languages (`auto`: from its
    tokenizer's language tokens)."""

    kind: Literal["mt"]
    model: str
    codes: Literal["auto", "nllb", "m2m100"] = "auto"
    batch_size: PositiveInt = 16
    max_new_tokens: PositiveInt = 512
    num_beams: PositiveInt = 1
    device: Literal["cpu", "auto"] = "cpu"
    cache_dir: str = "cache/translate"


class LLMTranslatorConfig(EndpointConfig):
    """An LLM behind any OpenAI-compatible endpoint, asked for the translation alone."""

    kind: Literal["llm"]
    cache_dir: str = "cache/translate"


TranslatorConfig = Annotated[
    Union[MTTranslatorConfig, LLMTranslatorConfig],  # noqa: UP007
    Field(discriminator="kind"),
]


class TranslationConfig(Strict):
    """Translate the `split` records of data source `source` into `languages` (default: every
    study language the source is not in). `fields`: what is translated; a field the record
    lacks stays empty. Translations are cached per item under the translator's `cache_dir`,
    so that a rerun or a killed run translates only what is missing."""

    source: Name
    translator: TranslatorConfig
    split: Literal["train", "eval"] = "train"
    languages: StudyLanguages | None = None
    fields: Annotated[list[Field_], AfterValidator(unique_items), AfterValidator(_with_prompt)] = [
        "prompt",
        "response",
        "chosen",
        "rejected",
    ]
    max_per_language: PositiveInt | None = None
