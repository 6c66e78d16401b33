"""One model evaluated on a split, the one way the study does it: every replicate's responses
(reused where nothing they depend on changed), judged against the base's responses of the same
seed, the harm verdicts by the classifier when params give one. The evaluate stage and the
search both call `evaluate`; `metrics` turns its verdicts into figures."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mixmerge.config.evaluation import EvaluationConfig, GenerationConfig
from mixmerge.core.records import Record
from mixmerge.evaluation import generations, verdicts
from mixmerge.evaluation.metrics import Summary
from mixmerge.evaluation.verdicts import HarmJudge
from mixmerge.judging import make_judge
from mixmerge.judging.items import Judge


@dataclass(frozen=True)
class Judges:
    """The judge, and the classifier that takes over its harm verdicts when params give one."""

    judge: Judge
    harm: HarmJudge | None = None

    @classmethod
    def of(cls, evaluation: EvaluationConfig, trust_remote_code: bool = False) -> Judges:
        judge = make_judge(evaluation.judge)  # an unreachable judge fails here, before generating
        if evaluation.harm_classifier is None:
            return cls(judge)
        from mixmerge.judging import classifier

        return cls(judge, classifier.harm_judge(evaluation.harm_classifier, trust_remote_code))


class EvaluationReport(Summary):
    """reports/eval/<model>.json: a model's metrics (`Summary`) and how they were judged."""

    model: str
    judge: str  # the judge's kind
    harm_judge: str  # `classifier` where a harm classifier judged harm, else the judge's kind
    replicates: list[str]
    unknown: dict[str, int]  # verdicts the judge could not give, per kind
    prompts: dict[str, int]  # per objective
    generated: int  # responses generated now; the rest were reused
    judge_usage: dict


@dataclass(frozen=True)
class Evaluation:
    """A model's responses to a split and their verdicts, each row marked with its replicate
    (unmarked for a model judged alone)."""

    generations: list[dict]
    generated: int  # responses generated now; the rest were reused
    judgments: list[dict]

    @property
    def unknown(self) -> dict[str, int]:
        """Verdicts the judge could not give, per question."""
        return verdicts.unknown_counts(self.judgments)


def evaluate(
    model: str,
    folders: Mapping[str | None, Path],
    records: Sequence[Record],
    settings: GenerationConfig,
    judges: Judges,
    base_texts: Mapping[str | None, Sequence[str]] | None,
    previous: Sequence[dict] = (),
    trust_remote_code: bool = False,
    keep: Callable[[list[dict]], None] | None = None,
) -> Evaluation:
    """`model`'s replicates (name: folder; one named None is judged alone) on `records`: their
    responses, reusing `previous`, and their verdicts against the base's responses of each
    replicate's seed (`base_texts` by replicate; None when `model` is the base, whose
    responses are their own reference). `keep` receives the responses before they are judged,
    so that a failure while judging does not cost them."""
    rows, generated = generations.generate_replicates(
        model, folders, records, settings, previous, trust_remote_code
    )
    if keep is not None:
        keep(rows)
    names = list(folders)
    if base_texts is None:
        base_texts = verdicts.base_texts(rows, records, names)
    judged = verdicts.judge_replicates(judges.judge, records, rows, names, base_texts, judges.harm)
    return Evaluation(rows, generated, judged)
