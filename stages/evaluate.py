"""Stage `evaluate@<model>`: generate every eval prompt's response with every replicate of a
model, judge them, and write the study's metrics per language and averaged, with 95 % intervals
over seeds and prompts and each replicate's own figures (reports/eval/<model>.json)."""

from __future__ import annotations

from pathlib import Path

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.errors import StageError
from mixmerge.core.io import atomic_path, read_jsonl, write_json, write_jsonl
from mixmerge.data.prepared import read_eval_split
from mixmerge.evaluation import generations, metrics, verdicts
from mixmerge.judging import make_judge


def run(params: StudyConfig, model: str, root: Path = paths.ROOT) -> dict:
    if params.evaluation is None:
        raise StageError("params have no `evaluation` section")
    evaluation = params.evaluation
    folders = {paths.seed_folder(seed): paths.folder(model, seed, root) for seed in params.seeds}
    names = list(folders)
    for folder in folders.values():
        if not (folder / "config.json").is_file():
            raise StageError(f"no model at {folder}: run {paths.producer(model)} first")
    records = read_eval_split(root / paths.PREPARED, params.languages)
    base = paths.evaluation(paths.BASE, root)
    if model != paths.BASE:
        for path in (base["generations"], base["judgments"]):
            if not path.is_file():
                raise StageError(f"no {path}: run `dvc repro evaluate-base` first")
    judge = make_judge(evaluation.judge)  # an unreachable judge fails here, before any generation
    outputs = paths.evaluation(model, root)
    previous = read_jsonl(outputs["generations"]) if outputs["generations"].is_file() else []
    rows, generated = generations.generate_replicates(
        model,
        folders,
        records,
        evaluation.generation,
        previous,
        params.trust_remote_code,
    )
    # Kept now: a failure while judging must not cost the generations.
    with atomic_path(outputs["generations"]) as tmp:
        write_jsonl(tmp, rows)
    # Each replicate is compared with its own seed's base, the start of its chain.
    if model == paths.BASE:
        base_texts, base_judged = verdicts.base_texts(rows, records, names), None
    else:
        base_texts = verdicts.base_texts(read_jsonl(base["generations"]), records, names)
        base_judged = read_jsonl(base["judgments"])
    harm_judge = None
    if evaluation.harm_classifier is not None:
        from mixmerge.judging import classifier

        harm_judge = classifier.harm_judge(evaluation.harm_classifier, params.trust_remote_code)
    judged = verdicts.judge_replicates(judge, records, rows, names, base_texts, harm_judge)
    unknown = verdicts.unknown_counts(judged)
    if sum(unknown.values()) > evaluation.max_unknown_share * len(judged):
        raise StageError(
            f"the judge gave no verdict on {sum(unknown.values())} of {len(judged)} responses "
            f"({unknown}; usage {judge.usage()}), more than `evaluation.max_unknown_share`: "
            "no metrics written. Verdicts given so far are cached; run the stage again."
        )
    summary = metrics.summarise(
        verdicts.by_language(judged, base_judged or judged, names),
        samples=evaluation.bootstrap.samples,
        seed=evaluation.bootstrap.seed,
        confidence=evaluation.bootstrap.confidence,
        replicate_names=names,
    )
    result = {
        "model": model,
        "judge": evaluation.judge.kind,
        "harm_judge": "classifier" if harm_judge else evaluation.judge.kind,
        "replicates": names,
        **summary,
        "unknown": unknown,
        "prompts": {
            objective: sum(1 for r in records if r.objective == objective)
            for objective in ("safety", "general", "benign")
        },
        "generated": generated,
        "judge_usage": judge.usage(),
    }
    with atomic_path(outputs["judgments"]) as tmp:
        write_jsonl(tmp, judged)
    with atomic_path(outputs["metrics"]) as tmp:
        write_json(tmp, result)
    return result
