"""The `merges` table: which models each merge combines, by which method, with what
parameters."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from mixmerge import paths
from mixmerge.config.common import ModelRef, Strict, domain_check
from mixmerge.core.suggest import did_you_mean


class MergeRuleConfig(Strict):
    """A parameter's value for the tensors whose name contains `filter` (all when None)."""

    filter: str | None = None
    value: float | Annotated[list[float], Field(min_length=1)]


# A number; a list of numbers, interpolated over layer depth (mergekit's "gradient"); or rules.
Setting = (
    float
    | Annotated[list[float], Field(min_length=1)]
    | Annotated[list[MergeRuleConfig], Field(min_length=1)]
)


def numbers(setting) -> list[float]:
    """Every number a setting holds."""
    if isinstance(setting, (int, float)):
        return [setting]
    return [
        n
        for item in setting
        for n in (numbers(item.value) if isinstance(item, MergeRuleConfig) else [item])
    ]


class MergeInputConfig(Strict):
    """A model to merge and its own parameters, which override the merge's: those its method
    declares for each model (mixmerge/merging/methods.py), checked against the method."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)
    __pydantic_extra__: dict[str, Setting | bool]

    model: ModelRef

    @property
    def settings(self) -> dict[str, Setting | bool]:
        """The parameters this model sets, as given."""
        return dict(self.model_extra or {})


class MergeParametersConfig(Strict):
    """Parameters of the merge as a whole, and defaults for every model's: those its method
    declares (mixmerge/merging/methods.py), checked against the method."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)
    __pydantic_extra__: dict[str, Setting | bool]

    @property
    def settings(self) -> dict[str, Setting | bool]:
        """The parameters given, as given."""
        return dict(self.model_extra or {})


class MergeConfig(Strict):
    """A merge of `models` by `method` (see mixmerge/merging/methods.py), at the training
    `stage` (sft or dpo) whose models it merges. Task-vector methods merge each model's
    difference from `base`; SLERP goes from `base` (t = 0), one of its two models, to the
    other. `seed` drives DARE's random drops; `out_dtype` defaults to the inputs' dtype.
    `diagnostics` measures how the task vectors interfere, per layer (diagnostics.json and
    the merge's reports); off, the merge writes no diagnostics.json and empty reports."""

    method: str
    stage: Literal["sft", "dpo"]
    models: Annotated[list[MergeInputConfig], Field(min_length=1)]
    base: ModelRef | None = None
    parameters: MergeParametersConfig = MergeParametersConfig()
    seed: int = 0
    out_dtype: Literal["float32", "bfloat16", "float16"] | None = None
    diagnostics: bool = True

    @field_validator("method")
    @classmethod
    def _known_method(cls, name: str, info: ValidationInfo) -> str:
        methods = domain_check(info, "merge_methods")
        if methods is not None and name not in methods:
            raise PydanticCustomError(
                "merge_method", "unknown merge method{hint}", {"hint": did_you_mean(name, methods)}
            )
        return name

    @model_validator(mode="after")
    def _fits_method(self, info: ValidationInfo) -> MergeConfig:
        # DVC knows a merge's inputs by their stage's folder (models/sft or models/dpo).
        strangers = [
            m
            for m in [*(m.model for m in self.models), self.base]
            if m not in (None, paths.BASE) and paths.parse(m).kind != self.stage
        ]
        problems = []
        if strangers:
            others = ", ".join(strangers)
            problems.append(f"a {self.stage}-stage merge takes {self.stage}/ models, not {others}")
        method_problems = domain_check(info, "merge_problems")
        if method_problems is not None:
            problems += method_problems(self)
        if problems:
            raise PydanticCustomError("merge", "{problems}", {"problems": "; ".join(problems)})
        return self


class MergeabilityConfig(Strict):
    """Whether each merge's models can be merged (`mixmerge.merging.mergeability`): the loss
    of held-out answers (dev, or eval where there is no dev) at each of `alphas` along the
    straight path between them, measured for every merge and search point unless `enabled` is
    off. A path whose barrier is at most `tolerance` of its ends' mean loss counts as linearly
    connected; `device`, `batch_size` and `max_length` (tokens of prompt and answer) say how
    the forward passes run."""

    enabled: bool = True
    alphas: Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=3)] = [
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
    ]
    tolerance: Annotated[float, Field(ge=0)] = 0.05
    device: Literal["cpu", "auto"] = "cpu"
    batch_size: Annotated[int, Field(gt=0)] = 16
    max_length: Annotated[int, Field(gt=1)] = 512

    @field_validator("alphas")
    @classmethod
    def _from_end_to_end(cls, alphas: list[float]) -> list[float]:
        if alphas != sorted(set(alphas)) or alphas[0] != 0 or alphas[-1] != 1:
            raise PydanticCustomError(
                "alphas", "alphas rise from 0 to 1, each once (the path's ends are 0 and 1)"
            )
        return alphas
