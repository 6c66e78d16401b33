"""Where the study's models live, and which stage makes each.

A model of the study is `base`, or `<kind>/<name>` with kind `sft`, `dpo` or `merge`. Every model
but the base is replicated once per training seed (params `seeds`): the model is the set of its
replicates, each a standard Hugging Face folder at models/<kind>/<name>/seed-<s>/. The base is
built once and shared by every replicate, as the paper's runs share one base checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stages.core.io import remove

MODELS = Path("models")
BASE = "base"
KINDS = ("sft", "dpo", "merge")


def parse(ref: str) -> tuple[str, str]:
    """(kind, name) of a model reference; `base` is ("base", "")."""
    if ref == BASE:
        return BASE, ""
    kind, _, name = ref.partition("/")
    return kind, name


def replicas(ref: str, seeds: Sequence[int]) -> list[int | None]:
    """The seeds a model is replicated over: None alone for the base."""
    return [None] if ref == BASE else list(seeds)


def seed_folder(seed: int) -> str:
    return f"seed-{seed}"


def folder(ref: str, seed: int | None, root: Path = Path(".")) -> Path:
    """The folder of a model's replicate for `seed`; the base's is the same for every seed."""
    if ref == BASE:
        return root / MODELS / BASE
    if seed is None:
        raise ValueError(f"{ref} is replicated per seed: which seed?")
    return root / MODELS / ref / seed_folder(seed)


def producer(ref: str) -> str:
    """The command that makes a model (`sft/x` is made by `sft@x`)."""
    kind, name = parse(ref)
    return "`dvc repro base`" if kind == BASE else f"`dvc repro {kind}@{name}`"


def prune(ref: str, seeds: Sequence[int], root: Path = Path(".")) -> None:
    """Remove the replicates of `ref` whose seed the study no longer has."""
    kept = {seed_folder(seed) for seed in seeds}
    for stale in (root / MODELS / ref).glob("seed-*"):
        if stale.name not in kept:
            remove(stale)
