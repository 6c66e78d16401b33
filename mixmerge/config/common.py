"""What every section of the params schema shares: strict models, field types whose checks
name the allowed values, cross-references read from the validation context, and the problems
`load_params` reports (each with its key path and the bad value, with a did-you-mean).

Checks that need the rest of the file (is this language in `languages`? does this mixture
exist?) read it from the validation context (`mixmerge.config.study`), so that they run
alongside the type checks instead of after them. So do the checks that need what the library
knows (how many prompts the world holds, what a merge method takes): config imports nothing
above `mixmerge.core`, and `mixmerge.validation` puts those checks in the context, from the
packages that own them (`DOMAIN_CHECKS` names them). A check whose entry is absent is skipped.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from mixmerge.core.languages import ISO_639_1, PAPER_LANGUAGES
from mixmerge.core.suggest import did_you_mean

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

# The validation context's entries that carry the library's checks, each a callable (or a
# table) from the package that knows: see `mixmerge.validation`.
DOMAIN_CHECKS = (
    "world_languages",  # the languages the embedded world speaks
    "world_problems",  # (BuiltinSourceConfig, languages) -> what the world cannot give
    "mixture_problem",  # (safety, languages, size_per_language, size_total) -> str | None
    "merge_methods",  # the merge methods' names
    "merge_problems",  # (MergeConfig) -> what its method refuses
    "pipeline_stages",  # () -> the stages of the project's dvc.yaml, or None without one
)


def domain_check(info: ValidationInfo, name: str) -> Any:
    """The library's check `name` from the validation context, or None."""
    assert name in DOMAIN_CHECKS, name
    return (info.context or {}).get(name)


def _name(name: str) -> str:
    # Names become folder names and DVC stage keys (`mix@<name>`).
    if not _NAME.fullmatch(name) or ".." in name:
        raise PydanticCustomError(
            "bad_name", "a name may hold letters, digits, '_', '-' and '.' (not '..') only"
        )
    return name


def known_language(code: str) -> str:
    if code not in ISO_639_1:
        # A typo of one of the paper's languages is likelier than of any other code.
        hints = (did_you_mean(code, PAPER_LANGUAGES), did_you_mean(code, ISO_639_1))
        raise PydanticCustomError(
            "unknown_language",
            "unknown language code (ISO 639-1 expected){hint}",
            {"hint": next((h for h in hints if "did you mean" in h), "")},
        )
    return code


def _study_language(code: str, info: ValidationInfo) -> str:
    code = known_language(code)
    study = (info.context or {}).get("languages")
    if study is not None and code not in study:
        raise PydanticCustomError(
            "language_not_in_study",
            "language is not one of `languages` ({study}){hint}",
            {"study": ", ".join(study), "hint": did_you_mean(code, study)},
        )
    return code


def unique_items(values: list) -> list:
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
Language = Annotated[str, AfterValidator(known_language)]
StudyLanguage = Annotated[str, AfterValidator(_study_language)]
StudyLanguages = Annotated[list[StudyLanguage], Field(min_length=1), AfterValidator(unique_items)]
MixtureName = Annotated[str, AfterValidator(_reference("mixture"))]
ModelRef = Annotated[str, AfterValidator(_reference("model"))]
Share = Annotated[float, Field(ge=0, le=1)]
Paths = Annotated[list[str], BeforeValidator(_as_list), Field(min_length=1)]


class Strict(BaseModel):
    # strict: a YAML `true` or "0.5" is not silently taken for a number.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ---------------------------------------------------------------------------------------------
# Problems, as `load_params` reports them

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


class UniqueKeyLoader(yaml.SafeLoader):
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


# Keys renamed since a release, by their table and new name: params that still write the old one
# are refused with the new one (`base.source` is `base.kind`, as every other table's
# discriminator is).
RENAMED = {("base", "kind"): "source"}


def problem_of(error: Mapping, schema: type[BaseModel]) -> Problem:
    """A pydantic error on a file validated against `schema`, as the user's key path."""
    path, holder, annotation = _walk(error["loc"], schema)
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
            old = RENAMED.get((path, key))
            if isinstance(value, Mapping) and old in value:
                return Problem(f"{path}.{old}", f"renamed: write `{key}: {value[old]}`", value[old])
            return Problem(f"{path}.{key}", f"required key is missing (one of {', '.join(tags)})")
        tag = error["ctx"]["tag"]
        return Problem(f"{path}.{key}", f"unknown {key}" + did_you_mean(tag, tags), tag)
    return Problem(path or "<file>", error["msg"], value)


def _walk(loc: tuple, schema: type[BaseModel]) -> tuple[str, type[BaseModel] | None, Any]:
    """The user's key path for a pydantic error location, the model holding its last key, and
    the annotation of the value there.

    Pydantic adds union members (the `kind` of a source) to locations; the user never wrote
    them, so they are followed but not shown.
    """
    parts: list[str] = []
    annotation: Any = schema
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
            chosen = next((m for m in members if part in _tags(m, "kind")), None)
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
