"""Where the study's files live, what a model reference names, and which stage makes each.

The paths the library and the stages share are here, relative to the repository root (`root`).
Each stage module says what its stage writes (its `outputs`), built from these; a test checks
that against `dvc.yaml`'s outs, and the data deps against what some stage writes.

A model of the study is `base`, or `<kind>/<name>` with kind `sft`, `dpo` or `merge`. Every model
is replicated once per training seed (params `seeds`): the model is the set of its replicates,
each a standard Hugging Face folder at models/<kind>/<name>/seed-<s>/ (models/base/seed-<s>/).
A seed's replicates form one chain: its base, the fine-tunes trained from it, their merges. The
paper's runs share one base checkpoint; the study replicates the base too, so that the
variance of building it (another seed, or another machine's arithmetic) is in every interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from mixmerge.core.io import remove

ROOT = Path(".")

# What `translate@<name>` and `synthesize@<name>` write: generated/<stage>/<name>/records.jsonl,
# read by `generated` data sources. `prepare` depends on the whole folder.
GENERATED = Path("data/generated")
GENERATED_REPORTS = Path("reports/generated")
# Links to the files params name, one folder per stage that reads them (mixmerge.inputs).
INPUTS = Path("inputs")
PREPARED = Path("data/prepared")
PREPARE_REPORT = Path("reports/prepare.json")
MIXTURES = Path("data/mixtures")
MIXTURE_MANIFESTS = Path("reports/mixtures")
MODELS = Path("models")
CHECKPOINTS = Path("checkpoints")
TRAIN_REPORTS = Path("reports/train")
MERGE_REPORTS = Path("reports/merges")
EVALUATIONS = Path("evaluations")
EVAL_REPORTS = Path("reports/eval")
REPORT = Path("reports/report.md")
REPORT_HTML = Path("reports/report.html")
SUMMARY = Path("reports/summary.json")
FIGURES = Path("reports/figures")
# search@<name>: the trials file and the base's dev answers (kept between runs, to resume), the
# report (trials, front, chosen points) and the plot of every trial's dev figures; the points it
# chooses are merges, models/merge/<name>-<point>, evaluated by `evaluate-chosen@<name>`.
SEARCHES = Path("searches")
SEARCH_REPORTS = Path("reports/searches")
PLOTS = Path("reports/plots")

# The stages that train through accelerate when params say so, over a job's GPUs and nodes.
DISTRIBUTED_STAGES = ("sft", "dpo")

BASE = "base"
KINDS = ("sft", "dpo", "merge")
# The params table that declares the models of each kind.
TABLES = {"sft": "sft", "dpo": "dpo", "merge": "merges"}
# The points a search chooses from its front, each written as the merge `<search>-<point>`.
CHOSEN_POINTS = ("best", "knee")
# A mixture's file for each form its runs train on.
FORM_FILES = {"sft": "sft.jsonl", "preference": "preference.jsonl"}


class StudyModel(NamedTuple):
    """A model of the study: ("base", "") or (kind, name)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return BASE if self.kind == BASE else f"{self.kind}/{self.name}"

    @property
    def stage(self) -> str:
        """The `dvc.yaml` stage that makes it (`sft/x` is made by `sft@x`, a search's chosen
        point `merge/s-best` by `search@s`)."""
        if self.kind == BASE:
            return BASE
        search = chosen_by(self.name) if self.kind == "merge" else None
        return f"search@{search}" if search else f"{self.kind}@{self.name}"

    @property
    def producer(self) -> str:
        """The command that makes it, for messages."""
        return f"`dvc repro {self.stage}`"


def ref(kind: str, name: str) -> str:
    """The reference of model `name` of `kind` (`sft/mix15`)."""
    return str(StudyModel(kind, name))


def parse(ref: str) -> StudyModel:
    """The model a reference names. It is `base` or `kind/name`, the form the params schema
    checks; anything else is a ValueError."""
    if ref == BASE:
        return StudyModel(BASE, "")
    kind, _, name = ref.partition("/")
    if kind not in KINDS or not name or "/" in name:
        raise ValueError(f"{ref!r} is not base, sft/RUN, dpo/RUN or merge/MERGE")
    return StudyModel(kind, name)


def chosen_merge(search: str, point: str) -> str:
    """The merge that search `search` writes for its chosen `point` (`sft_linear-best`)."""
    return f"{search}-{point}"


def chosen_refs(searches: Sequence[str]) -> set[str]:
    """The merges that searches `searches` choose: `merge/<search>-<point>` for each point."""
    return {ref("merge", chosen_merge(s, point)) for s in searches for point in CHOSEN_POINTS}


def chosen_by(merge: str) -> str | None:
    """The search whose chosen point merge `merge` is, or None for a merge of `merges`: a
    merge's name may not end in a point's suffix, so that the name alone tells them apart."""
    for point in CHOSEN_POINTS:
        if merge.endswith(f"-{point}") and len(merge) > len(point) + 1:
            return merge.removesuffix(f"-{point}")
    return None


def producer(ref: str) -> str:
    return parse(ref).producer


def seed_folder(seed: int) -> str:
    """The name of a replicate, in folders, files and reports (`seed-0`)."""
    return f"seed-{seed}"


def folder(ref: str, seed: int, root: Path = ROOT) -> Path:
    """The folder of a model's replicate for `seed`."""
    return root / MODELS / ref / seed_folder(seed)


def prune(ref: str, seeds: Sequence[int], root: Path = ROOT) -> None:
    """Remove the replicates of `ref` whose seed the study no longer has."""
    kept = {seed_folder(seed) for seed in seeds}
    for stale in (root / MODELS / ref).glob("seed-*"):
        if stale.name not in kept:
            remove(stale)


def mixture(name: str, root: Path = ROOT) -> Path:
    return root / MIXTURES / name


def checkpoints(ref: str, root: Path = ROOT) -> Path:
    """Where the runs of a trained model (or the base) keep their resumable state."""
    return root / CHECKPOINTS / ref


def train_report(ref: str, root: Path = ROOT) -> Path:
    """A trained model's metrics; its DVCLive folder is the same path without `.json`."""
    return root / TRAIN_REPORTS / f"{ref}.json"


def training_curves(ref: str, root: Path = ROOT) -> Path:
    """Where a run's DVCLive logs its metrics, a folder per seed of one `<metric>.tsv` each."""
    return train_report(ref, root).with_suffix("") / "plots" / "metrics"


def loss_log(ref: str, seed: int, root: Path = ROOT) -> Path:
    """A run's training loss by step, for one seed (`step`, `loss`, tab-separated)."""
    return training_curves(ref, root) / seed_folder(seed) / "loss.tsv"


def merge_report(name: str, root: Path = ROOT) -> Path:
    """A merge's interference summary; the per-layer rows by seed are in the folder beside it."""
    return root / MERGE_REPORTS / f"{name}.json"


def evaluation(ref: str, root: Path = ROOT) -> dict[str, Path]:
    """A model's generations and judgments, which persist between runs, and its metrics."""
    folder = root / EVALUATIONS / ref
    return {
        "generations": folder / "generations.jsonl",
        "judgments": folder / "judgments.jsonl",
        "metrics": root / EVAL_REPORTS / f"{ref}.json",
    }


def generated(generator: str, name: str, root: Path = ROOT) -> Path:
    """The records file of `translate@name` or `synthesize@name` (`generator` names which)."""
    return root / GENERATED / generator / name / "records.jsonl"


def generated_report(generator: str, name: str, root: Path = ROOT) -> Path:
    return root / GENERATED_REPORTS / generator / f"{name}.json"


def merge_outputs(name: str) -> list[Path]:
    """What merging `name` writes: the model, its interference summary and the per-layer rows
    of each replicate (for merge@<name>, and for the points a search chooses)."""
    return [MODELS / "merge" / name, merge_report(name), MERGE_REPORTS / name]
