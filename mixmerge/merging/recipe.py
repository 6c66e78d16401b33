"""A merge's recipe, resolved (every default filled in), and the same merge as a mergekit
configuration, so that anyone can redo it with `mergekit-yaml`."""

from __future__ import annotations

from pathlib import Path

from mixmerge.config.merges import MergeConfig
from mixmerge.merging.registry import METHODS

OUT_DTYPES = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}
MERGEKIT_DTYPES = {"F64": "float64", "F32": "float32", "BF16": "bfloat16", "F16": "float16"}


def model_settings(merge: MergeConfig) -> list[dict]:
    """Each model's own parameters, as given, in the order its method declares them."""
    return [
        _in_order(merge, m.model_dump(exclude={"model"}, exclude_none=True)) for m in merge.models
    ]


def merge_settings(merge: MergeConfig) -> dict:
    """The merge-wide parameters, as given, in the order its method declares them."""
    return _in_order(merge, merge.parameters.model_dump(exclude_none=True))


def _in_order(merge: MergeConfig, given: dict) -> dict:
    declared = [p.name for p in METHODS[merge.method].parameters]
    return {key: given[key] for key in declared if key in given}


def resolved(name: str, merge: MergeConfig, paths: dict[str, Path], replicate: int) -> dict:
    """merge.yaml: what was merged (the replicates of training seed `replicate`), how, with
    which defaults."""
    method = METHODS[merge.method]
    given = merge_settings(merge)  # validation made sure every required one is given
    return {
        "merge": name,
        "method": merge.method,
        "reference": method.paper,
        "stage": merge.stage,
        "base": None
        if merge.base is None
        else {"model": merge.base, "path": str(paths[merge.base])},
        "models": [
            {
                "model": m.model,
                "path": str(paths[m.model]),
                **{p.name: own.get(p.name, given.get(p.name, p.default)) for p in method.per_model},
            }
            for m, own in zip(merge.models, model_settings(merge), strict=True)
        ],
        "parameters": {p.name: given.get(p.name, p.default) for p in method.merge_wide},
        "seed": merge.seed,
        "training_seed": replicate,
        "out_dtype": merge.out_dtype,
    }


def mergekit_config(merge: MergeConfig, paths: dict[str, Path], input_dtype: str) -> dict:
    """The same merge for mergekit (paths relative to the repository root). mergekit draws
    DARE's random drops with its own generator, so DARE merges agree in expectation only.

    mergekit computes in `dtype` and writes `out_dtype` (mergekit/config.py): float32, as this
    engine computes, and the dtype this engine writes: `merge.out_dtype`, else the inputs'
    floating dtype (`input_dtype`, a safetensors name). mergekit writes every tensor in one
    dtype, so inputs whose floating tensors mix dtypes come out in the dtype of most entries."""
    method = METHODS[merge.method]
    given = merge_settings(merge)
    config: dict = {"merge_method": merge.method}
    if merge.base is not None:
        config["base_model"] = str(paths[merge.base])
    config["models"] = [
        {"model": str(paths[m.model]), **({"parameters": own} if own else {})}
        for m, own in zip(merge.models, model_settings(merge), strict=True)
    ]
    if any(p.name == "weight" for p in method.per_model):
        # mergekit requires every model's weight; ours defaults to 1.
        for model in config["models"]:
            model.setdefault("parameters", {}).setdefault("weight", given.get("weight", 1.0))
    if given:
        config["parameters"] = given
    config["dtype"] = "float32"
    config["out_dtype"] = merge.out_dtype or MERGEKIT_DTYPES[input_dtype]
    return config


def canonical(merge: MergeConfig) -> dict:
    """The recipe in the form two recipes that merge the same model share: where the method
    divides by the sum of the weights (`normalize`), weights that are plain numbers are scaled
    to sum to one, so that (0.3, 0.3) and (0.5, 0.5), which the paper's grid over each model's
    weight holds four times over, are one merge."""
    method = METHODS[merge.method]
    form = merge.model_dump(by_alias=True, exclude_none=True)
    given = merge_settings(merge)
    normalize = given.get("normalize", method.default("normalize", False))
    if not any(p.name == "weight" for p in method.per_model) or not normalize:
        return form
    default = given.get("weight", method.default("weight"))
    weights = [m.get("weight", default) for m in form["models"]]
    total = sum(weights) if all(isinstance(w, float | int) for w in weights) else 0
    if abs(total) < 1e-12:  # gradients or rules, or weights the merge refuses
        return form
    for model, weight in zip(form["models"], weights, strict=True):
        model["weight"] = round(weight / total, 12)
    form["parameters"].pop("weight", None)
    return form
