"""The typed schema of params.yaml, and the validation every stage runs before it starts.

`load_params` reports every problem at once, each with its key path and the bad value, with a
did-you-mean for misspelt names. Checks that need the rest of the file (is this language in
`languages`? does this mixture exist?) read it from the validation context, so that they run
alongside the type checks instead of after them.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from stages import world
from stages.core import mixing
from stages.core.errors import StageError
from stages.core.languages import ISO_639_1
from stages.core.records import OBJECTIVES, Objective
from stages.core.suggest import did_you_mean

# ---------------------------------------------------------------------------------------------
# Field types whose checks name the allowed values.

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _name(name: str) -> str:
    # Names become folder names and DVC stage keys (`mix@<name>`).
    if not _NAME.fullmatch(name) or ".." in name:
        raise PydanticCustomError(
            "bad_name", "a name may hold letters, digits, '_', '-' and '.' (not '..') only"
        )
    return name


def _known_language(code: str) -> str:
    if code not in ISO_639_1:
        # A typo of one of the paper's languages is likelier than of any other code.
        hints = (did_you_mean(code, world.LANGUAGES), did_you_mean(code, ISO_639_1))
        raise PydanticCustomError(
            "unknown_language",
            "unknown language code (ISO 639-1 expected){hint}",
            {"hint": next((h for h in hints if "did you mean" in h), "")},
        )
    return code


def _study_language(code: str, info: ValidationInfo) -> str:
    code = _known_language(code)
    study = (info.context or {}).get("languages")
    if study is not None and code not in study:
        raise PydanticCustomError(
            "language_not_in_study",
            "language is not one of `languages` ({study}){hint}",
            {"study": ", ".join(study), "hint": did_you_mean(code, study)},
        )
    return code


def _unique(values: list) -> list:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise PydanticCustomError(
            "repeated", "{repeated} listed more than once", {"repeated": ", ".join(repeated)}
        )
    return values


def _reference(kind: str):
    def check(name: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get(f"{kind}s")
        if known is not None and name not in known:
            raise PydanticCustomError(
                "unknown_reference",
                "unknown {kind}{hint}",
                {"kind": kind, "hint": did_you_mean(name, known)},
            )
        return name

    return check


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Name = Annotated[str, AfterValidator(_name)]
Language = Annotated[str, AfterValidator(_known_language)]
StudyLanguage = Annotated[str, AfterValidator(_study_language)]
StudyLanguages = Annotated[list[StudyLanguage], Field(min_length=1), AfterValidator(_unique)]
MixtureName = Annotated[str, AfterValidator(_reference("mixture"))]
ModelRef = Annotated[str, AfterValidator(_reference("model"))]
Share = Annotated[float, Field(ge=0, le=1)]
Paths = Annotated[list[str], BeforeValidator(_as_list), Field(min_length=1)]


class Strict(BaseModel):
    # strict: a YAML `true` or "0.5" is not silently taken for a number.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ---------------------------------------------------------------------------------------------
# data: where records come from


class SplitSizes(Strict):
    """Prompts per language and objective."""

    general: NonNegativeInt = 0
    safety: NonNegativeInt = 0
    benign: NonNegativeInt = 0


def _world_language(code: str) -> str:
    code = _known_language(code)
    if code not in world.LANGUAGES:
        raise PydanticCustomError(
            "language_not_in_world",
            "the builtin world speaks {known}{hint}",
            {"known": ", ".join(world.LANGUAGES), "hint": did_you_mean(code, world.LANGUAGES)},
        )
    return code


class BuiltinSource(Strict):
    """The embedded six-language world (see stages/world). `warmup_task_language`: the language
    the base's warm-up answers general tasks in, whatever the question's (null: the question's
    own), as instruction-tuned models often fall back to English."""

    kind: Literal["builtin"]
    seed: int = 0
    eval: SplitSizes
    warmup: SplitSizes = SplitSizes()
    train: SplitSizes
    warmup_task_language: Annotated[str, AfterValidator(_world_language)] | None = "en"

    @model_validator(mode="after")
    def _fits_in_world(self, info: ValidationInfo) -> BuiltinSource:
        study = (info.context or {}).get("languages") or []
        foreign = [code for code in study if code in ISO_639_1 and code not in world.LANGUAGES]
        if foreign:
            raise PydanticCustomError(
                "language_not_in_world",
                "the builtin world speaks {known}, not {foreign}",
                {"known": ", ".join(world.LANGUAGES), "foreign": ", ".join(foreign)},
            )
        problems = []
        spoken = [code for code in study if code in world.LANGUAGES] or world.LANGUAGES
        for objective in OBJECTIVES:
            asked = {s: getattr(getattr(self, s), objective) for s in ("eval", "warmup", "train")}
            have = min(world.capacity(objective, code) for code in spoken)
            if sum(asked.values()) > have:
                parts = " + ".join(f"{s} {n}" for s, n in asked.items())
                problems.append(f"{objective}: {parts} = {sum(asked.values())} > {have}")
            scorable = min(world.capacity(objective, code, split="eval") for code in spoken)
            if asked["eval"] > scorable:
                problems.append(
                    f"{objective}: eval {asked['eval']} > {scorable} that can be scored"
                )
        if problems:
            raise PydanticCustomError(
                "world_too_small",
                "the world has fewer prompts per language than asked for ({problems})",
                {"problems": "; ".join(problems)},
            )
        return self


class Columns(Strict):
    """Which column holds each field. A name with `{lang}` reads a wide file: one column per
    language, e.g. `prompt_{lang}`."""

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


class TableSource(Strict):
    """Rows of a table, read with `datasets.load_dataset`, mapped to records by `columns`."""

    objective: Objective
    columns: Columns
    use: Literal["train", "eval", "both"] = "both"
    eval_share: float = Field(0.1, gt=0, lt=1)
    seed: int = 0
    language: StudyLanguage | None = None
    languages: StudyLanguages | None = None
    language_values: dict[str, StudyLanguage] = {}
    category: str | None = None
    category_values: dict[str, str] = {}
    max_per_language: PositiveInt | None = None
    read_options: dict[str, Any] = {}

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
    def _coherent(self) -> TableSource:
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
        if self.use != "eval" and self.columns.response is None and self.columns.chosen is None:
            raise PydanticCustomError(
                "nothing_to_train_on",
                "a source used for training needs `columns.response` or `columns.chosen`; "
                "set `use: eval` for prompts only",
            )
        if (self.columns.chosen is None) != (self.columns.rejected is None):
            raise PydanticCustomError(
                "half_a_pair", "`columns.chosen` and `columns.rejected` go together"
            )
        return self

    def _all_modes(self) -> str:
        return "`language`, `columns.language`, `{lang}` in column names"


class HubSource(TableSource):
    """A dataset on the Hugging Face hub, or a local dataset folder, by `datasets.load_dataset`."""

    kind: Literal["hf"]
    dataset: str
    subset: str | None = None
    split: str = "train"
    revision: str | None = None


class FileSource(TableSource):
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
    def _one_file_list(self) -> FileSource:
        if (self.files is None) == (self.files_by_language is None):
            raise PydanticCustomError(
                "files", "give exactly one of `files` and `files_by_language`"
            )
        return self


Source = Annotated[
    Union[BuiltinSource, HubSource, FileSource], Field(discriminator="kind")  # noqa: UP007
]


class Data(Strict):
    sources: Annotated[dict[Name, Source], Field(min_length=1)]


# ---------------------------------------------------------------------------------------------
# mixtures, runs and merges


class Mixture(Strict):
    """A training set: `safety` is the share of safety examples (0.15 = 15 %), the rest general.

    Every example is drawn in each of `forms`: `sft` (prompt and target) and `preference`
    (prompt, chosen and rejected).
    """

    safety: Share
    languages: StudyLanguages | None = None  # default: every study language
    size_per_language: PositiveInt | None = None
    size_total: PositiveInt | None = None
    forms: Annotated[list[Literal["sft", "preference"]], Field(min_length=1)] = [
        "sft",
        "preference",
    ]
    seed: int = 0

    @model_validator(mode="after")
    def _realisable(self, info: ValidationInfo) -> Mixture:
        if (self.size_per_language is None) == (self.size_total is None):
            raise PydanticCustomError(
                "mixture_size", "give exactly one of `size_per_language` and `size_total`"
            )
        languages = self.languages or (info.context or {}).get("languages")
        if not languages:
            return self
        if self.size_total is not None and self.size_total < len(languages):
            raise PydanticCustomError(
                "mixture_too_small",
                "`size_total` {size} leaves some of its {n} languages without examples",
                {"size": self.size_total, "n": len(languages)},
            )
        counts = mixing.allocate(languages, self.safety, self.size_per_language, self.size_total)
        try:
            mixing.check_share(self.safety, counts)
        except StageError as error:
            raise PydanticCustomError("share", str(error)) from None
        return self


# ---------------------------------------------------------------------------------------------
# base model and training


class Optimization(Strict):
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


class PreferenceOptimization(Optimization):
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


class Lora(Strict):
    """LoRA adapters (Hu et al., 2021) instead of full fine-tuning."""

    r: PositiveInt = 16
    alpha: PositiveFloat = 32
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class Runtime(Strict):
    """Where and how every training run executes; none of this changes what is learnt on one
    device, except `precision`, `seed` and `lora`. `seed` is the builtin base's: the runs take
    theirs from `seeds`, one replicate each."""

    device: Literal["cpu", "auto"] = "cpu"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    launcher: Literal["python", "accelerate"] = "python"
    accelerate_config: str | None = None
    seed: int = 0
    lora: Lora | None = None
    activation_checkpointing: bool = False
    save_steps: PositiveInt = 100
    logging_steps: PositiveInt = 10

    @model_validator(mode="after")
    def _launchable(self) -> Runtime:
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


class Train(Strict):
    runtime: Runtime = Runtime()
    sft: Optimization
    dpo: PreferenceOptimization


class BuiltinArchitecture(Strict):
    """A small CohereForCausalLM: Aya's architecture, without QK-norm as in Aya."""

    hidden_size: PositiveInt = 128
    num_hidden_layers: PositiveInt = 4
    num_attention_heads: PositiveInt = 4
    num_key_value_heads: PositiveInt = 4
    intermediate_size: PositiveInt = 384
    max_position_embeddings: PositiveInt = 256

    @model_validator(mode="after")
    def _heads_divide(self) -> BuiltinArchitecture:
        if self.hidden_size % self.num_attention_heads:
            raise PydanticCustomError(
                "heads", "`hidden_size` must be a multiple of `num_attention_heads`"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise PydanticCustomError(
                "heads", "`num_attention_heads` must be a multiple of `num_key_value_heads`"
            )
        return self


class BuiltinBase(Strict):
    """A base model built here: a BPE tokenizer and a small Cohere model trained on the
    embedded world's corpus, then on its warm-up split (helpful, and not safe)."""

    source: Literal["builtin"]
    vocab_size: Annotated[int, Field(ge=300)] = 4096
    architecture: BuiltinArchitecture = BuiltinArchitecture()
    pretrain: Optimization
    warmup: Optimization


class HubBase(Strict):
    """A base model from the hub (by id, read from the local cache) or a local directory.
    `warmup`, when set, first fine-tunes it on the embedded world's warm-up split, as the
    builtin base is: a real model then complies in the world's terms, so that the world's rule
    judge sees its harm."""

    source: Literal["hf"]
    path: str
    revision: str | None = None
    trust_remote_code: bool = False
    warmup: Optimization | None = None


class GgufBase(Strict):
    """A base model from a llama.cpp `.gguf` file, dequantised once into a safetensors model
    folder in `dtype`; `warmup` as for a hub base."""

    source: Literal["gguf"]
    path: str
    dtype: Literal["float32", "bfloat16"] = "float32"
    warmup: Optimization | None = None

    @field_validator("path")
    @classmethod
    def _gguf_file(cls, path: str) -> str:
        if not path.endswith(".gguf"):
            raise PydanticCustomError("gguf_path", "a GGUF base is a `.gguf` file")
        return path


Base = Annotated[Union[BuiltinBase, HubBase, GgufBase], Field(discriminator="source")]  # noqa: UP007


class Run(Strict):
    """A training run: its mixture and the model it starts from (`base`, `sft/<run>`,
    `dpo/<run>` or `merge/<merge>`)."""

    mixture: MixtureName
    init: ModelRef


# ---------------------------------------------------------------------------------------------
# merges


class Rule(Strict):
    """A parameter's value for the tensors whose name contains `filter` (all when None)."""

    filter: str | None = None
    value: float | Annotated[list[float], Field(min_length=1)]


# A number; a list of numbers, interpolated over layer depth (mergekit's "gradient"); or rules.
Setting = (
    float | Annotated[list[float], Field(min_length=1)] | Annotated[list[Rule], Field(min_length=1)]
)


def _numbers(setting) -> list[float]:
    if isinstance(setting, (int, float)):
        return [setting]
    return [
        n for item in setting for n in (_numbers(item.value) if isinstance(item, Rule) else [item])
    ]


class MergeInput(Strict):
    """A model to merge and its own parameters (they override the merge's)."""

    model: ModelRef
    weight: Setting | None = None
    density: Setting | None = None
    gamma: Setting | None = None


class MergeParameters(Strict):
    """Parameters of the merge as a whole, and defaults for every model's."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    t: Setting | None = None
    scale: Setting | None = Field(None, alias="lambda")
    normalize: bool | None = None
    rescale: bool | None = None
    weight: Setting | None = None
    density: Setting | None = None
    gamma: Setting | None = None


PER_MODEL = ("weight", "density", "gamma")


class Merge(Strict):
    """A merge of `models` by `method` (see stages/merging/registry.py), at the training
    `stage` (sft or dpo) whose models it merges. Task-vector methods merge each model's
    difference from `base`; SLERP goes from `base` (t = 0), one of its two models, to the
    other. `seed` drives DARE's random drops; `out_dtype` defaults to the inputs' dtype.
    `diagnostics` measures how the task vectors interfere, per layer (diagnostics.json and
    the merge's reports); off, the merge writes no diagnostics.json and empty reports."""

    method: str
    stage: Literal["sft", "dpo"]
    models: Annotated[list[MergeInput], Field(min_length=1)]
    base: ModelRef | None = None
    parameters: MergeParameters = MergeParameters()
    seed: int = 0
    out_dtype: Literal["float32", "bfloat16", "float16"] | None = None
    diagnostics: bool = True

    @field_validator("method")
    @classmethod
    def _known_method(cls, name: str) -> str:
        from stages.merging.registry import METHODS

        if name not in METHODS:
            raise PydanticCustomError(
                "merge_method", "unknown merge method{hint}", {"hint": did_you_mean(name, METHODS)}
            )
        return name

    @model_validator(mode="after")
    def _fits_method(self) -> Merge:
        from stages.merging.registry import METHODS, REQUIRED

        method = METHODS[self.method]
        names = [m.model for m in self.models]
        given = {k for k, v in self.parameters.model_dump(by_alias=True).items() if v is not None}
        problems = []
        if method.needs_base and self.base is None:
            problems.append(f"{self.method} needs a `base`")
        if not method.needs_base and self.base is not None:
            problems.append(f"{self.method} takes no `base`")
        if method.computation == "slerp" and self.base is not None and self.base not in names:
            problems.append("slerp's `base` (its t = 0 end) must be one of its two models")
        if method.computation == "task_vector" and self.base in names:
            problems.append("list the base only as `base`: its task vector would be zero")
        # DVC knows a merge's inputs by their stage's folder (models/sft or models/dpo).
        strangers = [
            m
            for m in [*names, self.base]
            if m not in (None, "base") and not m.startswith(f"{self.stage}/")
        ]
        if strangers:
            others = ", ".join(strangers)
            problems.append(f"a {self.stage}-stage merge takes {self.stage}/ models, not {others}")
        too_many = method.max_models is not None and len(names) > method.max_models
        if len(names) < method.min_models or too_many:
            exact = method.min_models == method.max_models
            count = f"{'exactly' if exact else 'at least'} {method.min_models}"
            problems.append(f"{self.method} merges {count} models, not {len(names)}")
        accepted = set(method.model_parameters) | set(method.merge_parameters)
        problems += [f"{self.method} takes no parameter `{k}`" for k in sorted(given - accepted)]
        for model in self.models:
            own = {k for k in PER_MODEL if getattr(model, k) is not None}
            for key in sorted(own - set(method.model_parameters)):
                problems.append(f"{self.method} takes no `{key}` for {model.model}")
        for key, default in method.merge_parameters.items():
            if default is REQUIRED and key not in given:
                problems.append(f"{self.method} needs `parameters.{key}`")
        densities = [m.density for m in self.models] + [self.parameters.density]
        if any(not 0 < d <= 1 for s in densities if s is not None for d in _numbers(s)):
            problems.append("every density must be in (0, 1]")
        default_weight = 1.0 if self.parameters.weight is None else self.parameters.weight
        weights = [default_weight if m.weight is None else m.weight for m in self.models]
        normalize = self.parameters.normalize
        if normalize is None:
            normalize = method.merge_parameters.get("normalize", False)
        if normalize and all(isinstance(w, (int, float)) for w in weights) and sum(weights) == 0:
            problems.append("the weights sum to zero, and the merge divides by their sum")
        if problems:
            raise PydanticCustomError("merge", "{problems}", {"problems": "; ".join(problems)})
        return self


# ---------------------------------------------------------------------------------------------
# Evaluation


class Generation(Strict):
    """How every model answers the eval prompts: greedy unless `do_sample`."""

    backend: Literal["hf", "vllm"] = "hf"
    device: Literal["cpu", "auto"] = "cpu"
    batch_size: PositiveInt = 64
    max_new_tokens: PositiveInt = 64
    do_sample: bool = False
    temperature: Annotated[float, Field(gt=0)] = 1.0
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    seed: int = 0


class RuleJudge(Strict):
    kind: Literal["rule"]


class LLMJudge(Strict):
    """Any OpenAI-compatible endpoint. The key is read from the variable `api_key_env` names
    (null for keyless local servers); it is never written anywhere."""

    kind: Literal["llm"]
    base_url: str
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    max_concurrency: PositiveInt = 8
    max_retries: Annotated[int, Field(ge=0)] = 5
    timeout_s: Annotated[float, Field(gt=0)] = 120.0
    backoff_s: Annotated[float, Field(ge=0)] = 1.0
    max_backoff_s: Annotated[float, Field(ge=0)] = 60.0
    max_tokens: PositiveInt = 1024
    cache_dir: str = "cache/judge"


Judge = Annotated[Union[RuleJudge, LLMJudge], Field(discriminator="kind")]  # noqa: UP007


class HarmClassifier(Strict):
    """A local safety classifier for the harm verdicts (the judge keeps the rest): a model
    folder or hub id. generative: Llama Guard style; sequence: a sequence classifier."""

    model: str
    style: Literal["generative", "sequence"] = "generative"
    harmful_labels: Annotated[list[str], Field(min_length=1)] = ["unsafe"]
    batch_size: PositiveInt = 16
    device: Literal["cpu", "auto"] = "cpu"


class Bootstrap(Strict):
    samples: Annotated[int, Field(ge=100)] = 1000
    seed: int = 0
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95


class Evaluation(Strict):
    generation: Generation = Generation()
    judge: Judge = Field(RuleJudge(kind="rule"), validate_default=True)
    harm_classifier: HarmClassifier | None = None
    bootstrap: Bootstrap = Bootstrap()
    # Past this share of verdicts the judge could not give (an endpoint that went down, a
    # judge that answers no label), the stage fails rather than write metrics.
    max_unknown_share: Annotated[float, Field(ge=0, le=1)] = 0.05

    @field_validator("judge")
    @classmethod
    def _judges_the_sources(cls, judge: RuleJudge | LLMJudge, info: ValidationInfo):
        others = (info.context or {}).get("judged_sources") or []
        if judge.kind == "rule" and others:
            raise PydanticCustomError(
                "rule_judge",
                "the rule judge knows only the embedded world's answers, and sources "
                "{sources} are not builtin: judge them with `kind: llm`",
                {"sources": ", ".join(others)},
            )
        return judge


# ---------------------------------------------------------------------------------------------
# The report: which models its tables set side by side


class ByStage(Strict):
    """One row of a table with a column group per training stage."""

    sft: ModelRef | None = None
    dpo: ModelRef | None = None


class Comparison(Strict):
    """Rows (label: model) each compared with `baseline` on the same prompts."""

    baseline: ModelRef
    rows: Annotated[dict[str, ModelRef], Field(min_length=1)]


class Ablation(Strict):
    """Merges that differ in the weight of `model` only: the curve over that weight."""

    model: ModelRef
    merges: Annotated[list[ModelRef], Field(min_length=2)]


class Report(Strict):
    """The paper's tables. `objective` is Table 1: rows by label, a model per stage, each
    compared with `baseline` (the 15 % mixture) at the same stage."""

    baseline: ByStage
    objective: Annotated[dict[str, ByStage], Field(min_length=1)]
    language: Comparison | None = None
    order: Comparison | None = None
    ablation: Ablation | None = None
    bootstrap: Bootstrap = Bootstrap()


class Params(Strict):
    languages: Annotated[list[Language], Field(min_length=1), AfterValidator(_unique)]
    # Training seeds: every SFT and DPO run and every merge has one replicate per seed (merges
    # combine replicates of the same seed); figures aggregate them. The base is built once.
    seeds: Annotated[list[int], Field(min_length=1), AfterValidator(_unique)] = [0]
    data: Data
    mixtures: dict[Name, Mixture] = {}
    base: Base | None = None
    train: Train | None = None
    sft: dict[Name, Run] = {}
    dpo: dict[Name, Run] = {}
    merges: dict[Name, Merge] = {}
    evaluation: Evaluation | None = None
    report: Report | None = None

    def mixture_languages(self, name: str) -> list[str]:
        return self.mixtures[name].languages or self.languages

    @property
    def trust_remote_code(self) -> bool:
        """Whether models may run code of their own: only a hub base whose params allow it."""
        return isinstance(self.base, HubBase) and self.base.trust_remote_code

    @model_validator(mode="after")
    def _trainable(self) -> Params:
        if isinstance(self.base, BuiltinBase) and not any(
            isinstance(source, BuiltinSource) for source in self.data.sources.values()
        ):
            raise PydanticCustomError(
                "builtin_base",
                "`base.source: builtin` trains on the embedded world: add a `builtin` data source",
            )
        warmed = isinstance(self.base, (HubBase, GgufBase)) and self.base.warmup is not None
        if warmed and not any(
            isinstance(source, BuiltinSource) and source.warmup.general + source.warmup.safety
            for source in self.data.sources.values()
        ):
            raise PydanticCustomError(
                "base_warmup",
                "`base.warmup` trains on the embedded world's warm-up split: add a `builtin` "
                "data source with `warmup` sizes",
            )
        if (self.sft or self.dpo) and (self.base is None or self.train is None):
            raise PydanticCustomError("training", "runs in `sft` or `dpo` need `base` and `train`")
        for kind, form in (("sft", "sft"), ("dpo", "preference")):
            for name, run in getattr(self, kind).items():
                if form not in self.mixtures[run.mixture].forms:
                    raise PydanticCustomError(
                        "form",
                        "{kind}.{name} trains on mixture {mixture}, which has no {form} set",
                        {"kind": kind, "name": name, "mixture": run.mixture, "form": form},
                    )
        return self


# ---------------------------------------------------------------------------------------------
# Loading and reporting

_NO_VALUE = object()


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    value: Any = _NO_VALUE

    def __str__(self) -> str:
        if self.value is _NO_VALUE:
            return f"{self.path}: {self.message}"
        shown = repr(self.value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return f"{self.path}: {self.message} (got {shown})"


class ParamsError(Exception):
    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {count}\n{lines}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice, which plain YAML resolves silently (last wins)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as file:
            raw = yaml.load(file, Loader=_UniqueKeyLoader)  # noqa: S506 (a safe loader)
    except FileNotFoundError:
        raise ParamsError(str(path), [Problem("<file>", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ParamsError(str(path), [Problem("<file>", f"cannot read: {error}")]) from None
    except yaml.YAMLError as error:
        raise ParamsError(str(path), [Problem("<file>", f"not valid YAML: {error}")]) from None
    return validate_params(raw, source=str(path))


def validate_params(raw: Any, source: str = "params") -> Params:
    if not isinstance(raw, Mapping):
        raise ParamsError(source, [Problem("<file>", "expected a mapping of keys", raw)])
    problems = _cycles(raw)
    try:
        params = Params.model_validate(raw, context=_context(raw))
    except ValidationError as error:
        problems = [_problem(e) for e in error.errors()] + problems
    if problems:
        raise ParamsError(source, problems)
    return params


# A model reference is `<kind>/<name>`, its entry in the params table of that kind (or `base`).
MODEL_TABLES = {"sft": "sft", "dpo": "dpo", "merge": "merges"}


def _table(raw: Mapping, key: str) -> Mapping:
    section = raw.get(key)
    return section if isinstance(section, Mapping) else {}


def _context(raw: Mapping) -> dict:
    """What cross-references are checked against, read leniently from the raw file. A check
    whose table is itself malformed is skipped: that table gets its own error."""
    languages = raw.get("languages")
    tables_ok = all(isinstance(raw.get(key, {}), Mapping) for key in MODEL_TABLES.values())
    models = {"base"} | {
        f"{kind}/{name}" for kind, key in MODEL_TABLES.items() for name in _table(raw, key)
    }
    mixtures_ok = isinstance(raw.get("mixtures", {}), Mapping)
    sources = _table(_table(raw, "data"), "sources")
    return {
        "judged_sources": [
            str(name)
            for name, source in sources.items()
            if isinstance(source, Mapping)
            and source.get("kind") != "builtin"
            and source.get("use") != "train"
        ],
        "languages": [str(c) for c in languages] if isinstance(languages, list) else None,
        "mixtures": set(map(str, _table(raw, "mixtures"))) if mixtures_ok else None,
        "models": models if tables_ok else None,
    }


def _dependencies(raw: Mapping) -> dict[str, list[tuple[str, str]]]:
    """Model -> the models it is built from, each with the key path that names it."""
    edges: dict[str, list[tuple[str, str]]] = {}
    for kind in ("sft", "dpo"):
        for name, run in _table(raw, kind).items():
            init = run.get("init", "base") if isinstance(run, Mapping) else None
            if isinstance(init, str):
                edges[f"{kind}/{name}"] = [(init, f"{kind}.{name}.init")]
    for name, merge in _table(raw, "merges").items():
        merge = merge if isinstance(merge, Mapping) else {}
        inputs = merge.get("models") if isinstance(merge.get("models"), list) else []
        edges[f"merge/{name}"] = [
            (m["model"], f"merges.{name}.models[{i}].model")
            for i, m in enumerate(inputs)
            if isinstance(m, Mapping) and isinstance(m.get("model"), str)
        ]
        if isinstance(merge.get("base"), str):
            edges[f"merge/{name}"].append((merge["base"], f"merges.{name}.base"))
    return edges


def _cycles(raw: Mapping) -> list[Problem]:
    """Models that (indirectly) start from or merge themselves."""
    edges = _dependencies(raw)
    problems, done = [], set()

    def visit(node: str, trail: list[str]) -> None:
        for target, path in edges.get(node, []):
            if target in trail:
                loop = " -> ".join(trail[trail.index(target) :] + [target])
                problems.append(Problem(path, f"models depend on each other: {loop}", target))
            elif target not in done:
                visit(target, trail + [target])
        done.add(node)

    for node in edges:
        if node not in done:
            visit(node, [node])
    return problems


def _problem(error: Mapping) -> Problem:
    path, holder, annotation = _walk(error["loc"])
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        fields = holder.model_fields if holder else {}
        return Problem(path, "unknown key" + did_you_mean(error["loc"][-1], fields), value)
    if kind == "missing":
        return Problem(path, "required key is missing")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        key = error["ctx"]["discriminator"].strip("'")
        tags = [t for m in _union_members(_unwrap(annotation)) for t in _tags(m, key)]
        if kind == "union_tag_not_found":
            return Problem(f"{path}.{key}", f"required key is missing (one of {', '.join(tags)})")
        tag = error["ctx"]["tag"]
        return Problem(f"{path}.{key}", f"unknown {key}" + did_you_mean(tag, tags), tag)
    return Problem(path or "<file>", error["msg"], value)


def _walk(loc: tuple) -> tuple[str, type[BaseModel] | None, Any]:
    """The user's key path for a pydantic error location, the model holding its last key, and
    the annotation of the value there.

    Pydantic adds union members (the `kind` of a source) to locations; the user never wrote
    them, so they are followed but not shown.
    """
    parts: list[str] = []
    annotation: Any = Params
    holder: type[BaseModel] | None = None
    for part in loc:
        annotation = _unwrap(annotation)
        if part == "[key]":  # the error is about the key just shown, not its value
            continue
        if isinstance(part, int):
            parts.append(f"[{part}]")
            args = get_args(annotation)
            annotation = args[0] if args else None
            continue
        members = _union_members(annotation)
        if members:
            chosen = next((m for m in members if part in _tags(m, "kind", "source")), None)
            if chosen is not None:
                annotation = chosen
                continue
        parts.append(("." if parts else "") + str(part))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            holder = annotation
            field = annotation.model_fields.get(part)
            annotation = field.annotation if field else None
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            annotation = None
    return "".join(parts), holder, annotation


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    members = [m for m in _union_members(annotation) if m is not type(None)]
    return members[0] if len(members) == 1 else annotation


def _union_members(annotation: Any) -> tuple:
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(_unwrap(m) for m in get_args(annotation))
    return ()


def _tags(model: Any, *keys: str) -> tuple[str, ...]:
    """The values of the discriminating `keys` (kind, source) that select `model` in a union."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return ()
    fields = [model.model_fields.get(key) for key in keys]
    return tuple(tag for field in fields if field for tag in get_args(field.annotation))
