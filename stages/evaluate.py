"""Stage `evaluate@<model>`: generate every eval prompt's response with every replicate of a
model, judge them, and write the study's metrics per language and averaged, with 95 % intervals
over seeds and prompts and each replicate's own figures (reports/eval/<model>.json)."""

from __future__ import annotations

from pathlib import Path

from stages.core import models
from stages.core.config import Params
from stages.core.errors import StageError
from stages.core.io import atomic_path, read_jsonl, write_json, write_jsonl
from stages.core.records import Record
from stages.evaluation import generations, metrics, verdicts
from stages.prepare import PREPARED

EVALUATIONS = Path("evaluations")
REPORTS = Path("reports/eval")


def eval_records(root: Path, languages: list[str]) -> list[Record]:
    """The prepared eval split, every language and objective, in a fixed order."""
    folder = root / PREPARED / "eval"
    if not folder.is_dir():
        raise StageError(f"no {folder}: run `dvc repro prepare` first")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    undeclared = sorted(set(found) - set(languages))
    if undeclared:
        raise StageError(
            f"the eval set in {folder} has languages the study does not declare: "
            f"{', '.join(undeclared)} (params `languages`: {', '.join(languages)})"
        )
    records = [
        Record.from_json(row)
        for language in found
        for path in sorted((folder / language).glob("*.jsonl"))
        for row in read_jsonl(path)
    ]
    if not records:
        raise StageError(f"the eval set in {folder} is empty")
    return records


def make_judge(params: Params):
    config = params.evaluation.judge
    if config.kind == "llm":
        from stages.judging.llm import LLMJudge

        judge = LLMJudge(config)
        judge.check_reachable()
        return judge
    from stages.judging.rule import RuleJudge

    return RuleJudge()


def outputs(model: str, root: Path = Path(".")) -> dict[str, Path]:
    folder = root / EVALUATIONS / model
    return {
        "generations": folder / "generations.jsonl",
        "judgments": folder / "judgments.jsonl",
        "metrics": root / REPORTS / f"{model}.json",
    }


def run(params: Params, model: str, root: Path = Path(".")) -> dict:
    if params.evaluation is None:
        raise StageError("params have no `evaluation` section")
    evaluation = params.evaluation
    seeds = models.replicas(model, params.seeds)
    names = [None if seed is None else models.seed_folder(seed) for seed in seeds]
    folders = {seed: models.folder(model, seed, root) for seed in seeds}
    for folder in folders.values():
        if not (folder / "config.json").is_file():
            raise StageError(f"no model at {folder}: run {models.producer(model)} first")
    records = eval_records(root, params.languages)
    base = outputs(models.BASE, root)
    if model != models.BASE:
        for path in (base["generations"], base["judgments"]):
            if not path.is_file():
                raise StageError(f"no {path}: run `dvc repro evaluate-base` first")
    judge = make_judge(params)  # an unreachable judge fails here, before any generation
    paths = outputs(model, root)
    previous = read_jsonl(paths["generations"]) if paths["generations"].is_file() else []
    rows, generated = [], 0
    for seed, name in zip(seeds, names, strict=True):
        mine = [row for row in previous if row.get("replicate") == name]
        replicate_rows, count = generations.generate(
            model, folders[seed], records, evaluation.generation, mine, params.trust_remote_code
        )
        rows += [row | {"replicate": name} if name else row for row in replicate_rows]
        generated += count
    # Kept now: a failure while judging must not cost the generations.
    with atomic_path(paths["generations"]) as tmp:
        write_jsonl(tmp, rows)
    if model == models.BASE:
        base_texts, base_judged = [row["text"] for row in rows], None
    else:
        base_rows = {row["id"]: row for row in read_jsonl(base["generations"])}
        missing = [r.id for r in records if r.id not in base_rows]
        if missing:
            raise StageError(
                f"the base has no response to {len(missing)} eval prompts (first: {missing[0]}): "
                "run `dvc repro evaluate-base` again"
            )
        base_texts = [base_rows[r.id]["text"] for r in records]
        base_judged = {row["id"]: row for row in read_jsonl(base["judgments"])}
    harm_judge = None
    if evaluation.harm_classifier is not None:
        from stages.judging.classifier import classify

        def harm_judge(items):
            return classify(evaluation.harm_classifier, items, params.trust_remote_code)

    judged = []
    for name in names:
        texts = [row["text"] for row in rows if row.get("replicate") == name]
        replicate = verdicts.judge_responses(judge, records, texts, base_texts, harm_judge)
        judged += [row | {"replicate": name} if name else row for row in replicate]
    unknown = verdicts.unknown_counts(judged)
    if sum(unknown.values()) > evaluation.max_unknown_share * len(judged):
        raise StageError(
            f"the judge gave no verdict on {sum(unknown.values())} of {len(judged)} responses "
            f"({unknown}; usage {judge.usage()}), more than `evaluation.max_unknown_share`: "
            "no metrics written. Verdicts given so far are cached; run the stage again."
        )
    judged_by_id = {row["id"]: row for row in judged}
    summary = metrics.summarise(
        verdicts.by_language(judged, base_judged or judged_by_id, names),
        samples=evaluation.bootstrap.samples,
        seed=evaluation.bootstrap.seed,
        confidence=evaluation.bootstrap.confidence,
        replicate_names=[name or models.BASE for name in names],
    )
    result = {
        "model": model,
        "judge": evaluation.judge.kind,
        "harm_judge": "classifier" if harm_judge else evaluation.judge.kind,
        "replicates": [name or models.BASE for name in names],
        **summary,
        "unknown": unknown,
        "prompts": {
            objective: sum(1 for r in records if r.objective == objective)
            for objective in ("safety", "general", "benign")
        },
        "generated": generated,
        "judge_usage": judge.usage(),
    }
    with atomic_path(paths["judgments"]) as tmp:
        write_jsonl(tmp, judged)
    with atomic_path(paths["metrics"]) as tmp:
        write_json(tmp, result)
    return result
