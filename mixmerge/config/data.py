"""The `data` section: where records come from (the builtin world, hub datasets, local files)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mixmerge.config.common import (
    Name,
    Paths,
    Strict,
    StudyLanguage,
    StudyLanguages,
    domain_check,
    known_language,
)
from mixmerge.core.languages import ISO_639_1
from mixmerge.core.records import Objective
from mixmerge.core.suggest import did_you_mean


class SplitSizesConfig(Strict):
    """Prompts per language and objective."""

    general: NonNegativeInt = 0
    safety: NonNegativeInt = 0
    benign: NonNegativeInt = 0


def _world_language(code: str, info: ValidationInfo) -> str:
    code = known_language(code)
    spoken = domain_check(info, "world_languages")
    if spoken is not None and code not in spoken:
        raise PydanticCustomError(
            "language_not_in_world",
            "the builtin world speaks {known}{hint}",
            {"known": ", ".join(spoken), "hint": did_you_mean(code, spoken)},
        )
    return code


class BuiltinSourceConfig(Strict):
    """The embedded six-language world (see mixmerge/world). `warmup_task_language`: the language
    the base's warm-up answers general tasks in, whatever the question's (null: the question's
    own), as instruction-tuned models often fall back to English; it does so for a share
    `warmup_task_language_share` of them and answers the rest in the question's language.
    `warmup_refusal_share`: the share of the warm-up's harmful requests refused (the rest
    are complied with). A base that already gives the answers fine-tuning asks for, though
    not as its most likely one, is fine-tuned by eliciting them rather than teaching them: its
    fine-tunes move little (docs/mergeability.md). `dev`: prompts held out of every other split,
    for searches to score on; drawn last, so that asking for them changes no other split."""

    kind: Literal["builtin"]
    seed: int = 0
    eval: SplitSizesConfig
    warmup: SplitSizesConfig = SplitSizesConfig()
    train: SplitSizesConfig
    dev: SplitSizesConfig = SplitSizesConfig()
    warmup_task_language: Annotated[str, AfterValidator(_world_language)] | None = "en"
    warmup_task_language_share: Annotated[float, Field(ge=0, le=1)] = 1.0
    warmup_refusal_share: Annotated[float, Field(ge=0, le=1)] = 0.0

    @model_validator(mode="after")
    def _fits_in_world(self, info: ValidationInfo) -> BuiltinSourceConfig:
        spoken = domain_check(info, "world_languages")
        problems_of = domain_check(info, "world_problems")
        if spoken is None or problems_of is None:
            return self
        study = (info.context or {}).get("languages") or []
        foreign = [code for code in study if code in ISO_639_1 and code not in spoken]
        if foreign:
            raise PydanticCustomError(
                "language_not_in_world",
                "the builtin world speaks {known}, not {foreign}",
                {"known": ", ".join(spoken), "foreign": ", ".join(foreign)},
            )
        problems = problems_of(self, [code for code in study if code in spoken] or list(spoken))
        if problems:
            raise PydanticCustomError(
                "world_too_small",
                "the world has fewer prompts per language than asked for ({problems})",
                {"problems": "; ".join(problems)},
            )
        return self


class ColumnsConfig(Strict):
    """Which column holds each field. A name with `{lang}` reads a wide file: one column per
    language, e.g. `prompt_{lang}`. A dotted name reads inside a nested cell: `turns.0.content`
    is the content of the first turn of column `turns`."""

    prompt: str
    response: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    language: str | None = None
    category: str | None = None
    reference: str | None = None

    @property
    def wide(self) -> bool:
        return any("{lang}" in (name or "") for name in self.model_dump().values())


class SplitSourceConfig(Strict):
    """What every source of records but the builtin world says: their objective, how they are
    split (`use`; with `both`, `eval_share` of each language's prompts held out for eval, seeded
    by `seed`; with `both` or `eval`, `dev_share` more for dev, which searches score on), and
    which languages and how many records per language it gives."""

    objective: Objective
    use: Literal["train", "eval", "both"]
    eval_share: float = Field(0.1, gt=0, lt=1)
    dev_share: float = Field(0.0, ge=0, lt=1)
    seed: int = 0
    languages: StudyLanguages | None = None
    max_per_language: PositiveInt | None = None

    @model_validator(mode="after")
    def _dev_from_held_out(self) -> SplitSourceConfig:
        if self.dev_share and self.use == "train":
            raise PydanticCustomError(
                "dev_share", "dev prompts are held out like eval's: set `use` to eval or both"
            )
        if self.use == "both" and self.eval_share + self.dev_share >= 1:
            raise PydanticCustomError(
                "shares", "`eval_share` + `dev_share` leave nothing to train on"
            )
        return self


class TableSourceConfig(SplitSourceConfig):
    """Rows of a table, read with `datasets.load_dataset` (JSON Lines files line by line),
    mapped to records by `columns`. A malformed JSON line is skipped and counted; past
    `max_malformed_share` of a source's lines the source is an error. `where` keeps the rows
    whose column holds one of the values listed (`{label: [safe]}`), counting the others.

    A source of prompts alone is judged on (`use: eval`), or seeds a synthesis: its train
    prompts are then answered by `synthesize@<name>`, and only its eval prompts reach
    `prepare`."""

    columns: ColumnsConfig
    use: Literal["train", "eval", "both"] = "both"
    language: StudyLanguage | None = None
    language_values: dict[str, StudyLanguage] = {}
    category: str | None = None
    category_values: dict[str, str] = {}
    max_malformed_share: Annotated[float, Field(ge=0, le=1)] = 0.05
    where: dict[str, Annotated[list[str], Field(min_length=1)]] = {}
    read_options: dict[str, Any] = {}

    @property
    def prompts_only(self) -> bool:
        return self.columns.response is None and self.columns.chosen is None

    def language_modes(self) -> list[str]:
        """How rows get their language; exactly one must apply."""
        return [
            mode
            for mode, used in (
                ("`language`", self.language is not None),
                ("`columns.language`", self.columns.language is not None),
                ("`{lang}` in column names", self.columns.wide),
            )
            if used
        ]

    @model_validator(mode="after")
    def _coherent(self) -> TableSourceConfig:
        modes = self.language_modes()
        if len(modes) != 1:
            raise PydanticCustomError(
                "language_mode",
                "say how rows get their language with exactly one of {all} (got {got})",
                {"all": self._all_modes(), "got": ", ".join(modes) or "none"},
            )
        if self.language is not None and self.languages is not None:
            raise PydanticCustomError(
                "language_and_languages", "`languages` has no use when `language` is fixed"
            )
        if self.language_values and self.columns.language is None:
            raise PydanticCustomError(
                "language_values", "`language_values` maps `columns.language`, which is not set"
            )
        if (self.columns.chosen is None) != (self.columns.rejected is None):
            raise PydanticCustomError(
                "half_a_pair", "`columns.chosen` and `columns.rejected` go together"
            )
        return self

    def _all_modes(self) -> str:
        return "`language`, `columns.language`, `{lang}` in column names"


class HubSourceConfig(TableSourceConfig):
    """A dataset on the Hugging Face hub, or a local dataset folder, by `datasets.load_dataset`."""

    kind: Literal["hf"]
    dataset: str
    subset: str | None = None
    split: str = "train"
    revision: str | None = None


class FileSourceConfig(TableSourceConfig):
    """Local jsonl, csv or parquet files (globs allowed; relative to the working directory)."""

    kind: Literal["files"]
    files: Paths | None = None
    files_by_language: Annotated[dict[StudyLanguage, Paths], Field(min_length=1)] | None = None
    format: Literal["csv", "json", "parquet"] | None = None

    def language_modes(self) -> list[str]:
        modes = super().language_modes()
        return modes + (["`files_by_language`"] if self.files_by_language is not None else [])

    def _all_modes(self) -> str:
        return super()._all_modes() + ", `files_by_language`"

    @model_validator(mode="after")
    def _one_file_list(self) -> FileSourceConfig:
        if (self.files is None) == (self.files_by_language is None):
            raise PydanticCustomError(
                "files", "give exactly one of `files` and `files_by_language`"
            )
        return self


def _generated_by(ref: str, info: ValidationInfo) -> str:
    kind, _, name = ref.partition("/")
    known = (info.context or {}).get("generated")
    if kind not in GENERATORS:
        raise PydanticCustomError(
            "generated_by",
            "expected translate/<name> or synthesize/<name>{hint}",
            {"hint": did_you_mean(kind, GENERATORS)},
        )
    names = (known or {}).get(kind)
    if names is not None and name not in names:
        raise PydanticCustomError(
            "unknown_reference",
            "no {table} entry {name!r}{hint}",
            {"table": GENERATORS[kind], "name": name, "hint": did_you_mean(name, names)},
        )
    return ref


# The stages that write data for a `generated` source, and the params table of each.
GENERATORS = {"translate": "translations", "synthesize": "syntheses"}


class GeneratedSourceConfig(SplitSourceConfig):
    """The records a `translate@<name>` or `synthesize@<name>` stage wrote (`from:
    translate/<name>`), as an ordinary source: each record has its language and category."""

    kind: Literal["generated"]
    from_: Annotated[str, AfterValidator(_generated_by), Field(alias="from")]
    use: Literal["train", "eval", "both"] = "train"


SourceConfig = Annotated[
    Union[BuiltinSourceConfig, HubSourceConfig, FileSourceConfig, GeneratedSourceConfig],  # noqa: UP007
    Field(discriminator="kind"),
]


class DataConfig(Strict):
    sources: Annotated[dict[Name, SourceConfig], Field(min_length=1)]
