"""The merge methods by name (their definitions: mixmerge/merging/methods.py), and what params
validation asks of them: whether a recipe is one its method can do. No torch is imported, so
that validating params stays fast."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mixmerge.config.merges import numbers
from mixmerge.core.suggest import did_you_mean
from mixmerge.merging import methods  # noqa: F401 (its definitions register the methods)
from mixmerge.merging.definition import METHODS, Bounds, Inputs, MergeMethod, Parameter

if TYPE_CHECKING:
    from mixmerge.config.merges import MergeConfig


def merge_problems(merge: MergeConfig) -> list[str]:
    """What `merge`'s method refuses in it: a base it needs or takes not, its number of models,
    parameters it has not or needs, a switch that is not true or false, a number out of its
    bounds, weights it would divide by 0."""
    method = METHODS[merge.method]
    names = [m.model for m in merge.models]
    problems = _input_problems(method, merge, names)
    declared = {p.name: p for p in method.parameters}
    given = merge.parameters.settings
    for key in sorted(given.keys() - declared.keys()):
        hint = did_you_mean(key, declared)
        problems.append(f"{method.name} takes no parameter `{key}`{hint}")
    per_model = {p.name: p for p in method.per_model}
    for model in merge.models:
        for key in sorted(model.settings.keys() - per_model.keys()):
            if key in declared:
                problems.append(
                    f"{method.name} takes `{key}` for the merge as a whole (in `parameters`), "
                    f"not for {model.model}"
                )
            else:
                hint = did_you_mean(key, per_model)
                problems.append(f"{method.name} takes no `{key}` for {model.model}{hint}")
    problems += [
        f"{method.name} needs `parameters.{p.name}`"
        for p in method.merge_wide
        if p.required and p.name not in given
    ]
    values = {p.name: [] for p in method.parameters}
    for settings in (given, *(model.settings for model in merge.models)):
        for key, value in settings.items():
            if key in values:
                values[key].append(value)
    for parameter in method.parameters:
        problems += _value_problems(parameter, values[parameter.name])
    return problems + _divisor_problems(method, merge)


def _input_problems(method: MergeMethod, merge: MergeConfig, names: list[str]) -> list[str]:
    problems = []
    if method.needs_base and merge.base is None:
        problems.append(f"{method.name} needs a `base`")
    if not method.needs_base and merge.base is not None:
        problems.append(f"{method.name} takes no `base`")
    if method.inputs is Inputs.ENDS and merge.base is not None and merge.base not in names:
        problems.append(f"{method.name}'s `base` (its t = 0 end) must be one of its two models")
    if method.inputs is Inputs.TASK_VECTORS and merge.base in names:
        problems.append("list the base only as `base`: its task vector would be zero")
    too_many = method.max_models is not None and len(names) > method.max_models
    if len(names) < method.min_models or too_many:
        exact = method.min_models == method.max_models
        count = f"{'exactly' if exact else 'at least'} {method.min_models}"
        problems.append(f"{method.name} merges {count} models, not {len(names)}")
    return problems


def _value_problems(parameter: Parameter, given: list) -> list[str]:
    if parameter.switch:
        if any(not isinstance(value, bool) for value in given):
            return [f"`{parameter.name}` is true or false"]
        return []
    if any(isinstance(value, bool) for value in given):
        return [f"`{parameter.name}` is a number, a list of numbers or rules, not true or false"]
    if any(not parameter.bounds.holds(n) for value in given for n in numbers(value)):
        return [f"every {parameter.name} must be in {parameter.bounds}"]
    return []


def _divisor_problems(method: MergeMethod, merge: MergeConfig) -> list[str]:
    """Weights that sum to zero, where the method divides by their sum (`normalize`)."""
    if method.parameter("weight") is None or method.parameter("normalize") is None:
        return []
    given = merge.parameters.settings
    default_weight = given.get("weight", method.default("weight"))
    weights = [model.settings.get("weight", default_weight) for model in merge.models]
    normalize = given.get("normalize", method.default("normalize"))
    if normalize and all(isinstance(w, (int, float)) for w in weights) and sum(weights) == 0:
        return ["the weights sum to zero, and the merge divides by their sum"]
    return []


# What params validation asks of the methods (`mixmerge.config.common.DOMAIN_CHECKS`).
CHECKS = {"merge_methods": METHODS, "merge_problems": merge_problems}


def merge_context(models: set[str] | None = None) -> dict:
    """The validation context a merge recipe is checked in on its own: its method's checks,
    and the models it may name (None: any)."""
    return {"models": models, **CHECKS}


def method_table() -> str:
    """The methods as a Markdown table, from their definitions (docs/merge-methods.md holds
    it; a test keeps the two equal)."""
    base = {
        Inputs.MODELS: "none",
        Inputs.ENDS: "one of its two models, the t = 0 end",
        Inputs.TASK_VECTORS: "subtracted: merges τᵢ = θᵢ − θ_base",
    }
    rows = [
        "| method | what | base | per model | merge-wide | paper |",
        "|---|---|---|---|---|---|",
    ]
    for method in METHODS.values():
        cells = [
            f"`{method.name}`",
            method.summary.replace("|", "\\|"),
            base[method.inputs],
            ", ".join(map(_described, method.per_model)) or "none",
            ", ".join(map(_described, method.merge_wide)) or "none",
            method.paper,
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def _described(parameter: Parameter) -> str:
    if parameter.required:
        about = ["required"]
    elif parameter.switch:
        about = [f"default {str(parameter.default).lower()}"]
    else:
        about = [f"default {parameter.default:g}"]
    if parameter.bounds != Bounds():
        about.append(f"in {parameter.bounds}")
    return f"`{parameter.name}` ({'; '.join(about)})"
