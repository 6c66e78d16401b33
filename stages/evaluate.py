"""Stage `evaluate@<model>`: evaluate every replicate of a model on the eval prompts (generate
and judge, `mixmerge.evaluation.evaluate`), and write the study's metrics per language and
averaged, with 95 % replication intervals and each replicate's own figures
(reports/eval/<model>.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from mixmerge.stages.commands import PARAMS, ParamsFile, check_named, fail, load, run_stage

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.errors import StageError
from mixmerge.core.io import atomic_path, read_jsonl, write_json, write_jsonl
from mixmerge.data.prepared import read_eval_split
from mixmerge.evaluation import metrics, verdicts
from mixmerge.evaluation.evaluate import EvaluationReport, Judges, evaluate


def run(params: StudyConfig, model: str, root: Path = paths.ROOT) -> EvaluationReport:
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
    judges = Judges.of(evaluation, params.trust_remote_code)
    outputs = paths.evaluation(model, root)
    previous = read_jsonl(outputs["generations"]) if outputs["generations"].is_file() else []
    # Each replicate is compared with its own seed's base, the start of its chain.
    base_texts = (
        None
        if model == paths.BASE
        else verdicts.base_texts(read_jsonl(base["generations"]), records, names)
    )

    def keep(rows: list[dict]) -> None:
        with atomic_path(outputs["generations"]) as tmp:
            write_jsonl(tmp, rows)

    evaluated = evaluate(
        model, folders, records, evaluation.generation, judges, base_texts, previous,
        params.trust_remote_code, keep,
    )  # fmt: skip
    judged, unknown = evaluated.judgments, evaluated.unknown
    if sum(unknown.values()) > evaluation.max_unknown_share * len(judged):
        raise StageError(
            f"the judge gave no verdict on {sum(unknown.values())} of {len(judged)} responses "
            f"({unknown}; usage {judges.judge.usage()}), more than "
            "`evaluation.max_unknown_share`: no metrics written. Verdicts given so far are "
            "cached; run the stage again."
        )
    base_judged = judged if model == paths.BASE else read_jsonl(base["judgments"])
    summary = metrics.summarise(
        verdicts.by_language(judged, base_judged, names),
        samples=evaluation.bootstrap.samples,
        seed=evaluation.bootstrap.seed,
        confidence=evaluation.bootstrap.confidence,
        replicate_names=names,
    )
    result: EvaluationReport = {
        "model": model,
        "judge": evaluation.judge.kind,
        "harm_judge": "classifier" if judges.harm else evaluation.judge.kind,
        "replicates": names,
        **summary,
        "unknown": unknown,
        "prompts": {
            objective: sum(1 for r in records if r.objective == objective)
            for objective in ("safety", "general", "benign")
        },
        "generated": evaluated.generated,
        "judge_usage": judges.judge.usage(),
    }
    with atomic_path(outputs["judgments"]) as tmp:
        write_jsonl(tmp, judged)
    with atomic_path(outputs["metrics"]) as tmp:
        write_json(tmp, result)
    return result


def outputs(stage: str) -> list[Path]:
    """What `evaluate-<kind>[@<name>]` writes: its outs, metrics and plots, as dvc.yaml
    declares them (`evaluate-chosen@<search>` judges the points a search chose)."""
    group, _, name = stage.partition("@")
    kind = group.removeprefix("evaluate-")
    if kind == "chosen":
        refs = [f"merge/{paths.chosen_merge(name, point)}" for point in paths.CHOSEN_POINTS]
    else:
        refs = [paths.BASE if kind == paths.BASE else f"{kind}/{name}"]
    return [path for ref in refs for path in paths.evaluation(ref).values()]


# --- the command -----------------------------------------------------------------------------

ModelName = Annotated[
    str, typer.Argument(help="base, or sft/RUN, dpo/RUN, merge/MERGE as named in params.")
]


def command(model: ModelName, params: ParamsFile = PARAMS) -> None:
    """Judge every replicate of MODEL on the eval split: generate (reusing unchanged
    generations), judge harm, refusal and quality against the base (rule, LLM or classifier
    judge), and summarise.

    Writes evaluations/MODEL/{generations,judgments}.jsonl and reports/eval/MODEL.json: harmful
    rate, harm change, win-rate, over-refusal and general accuracy per language and averaged,
    each replicate's and their mean, with intervals over seeds and prompts and counts of
    unknown verdicts.
    """
    loaded = load(params, "evaluation")
    from mixmerge import paths

    try:
        ref = paths.parse(model)
    except ValueError as error:
        raise fail(error, 2) from None
    if ref.kind != paths.BASE:
        what = {"merge": "merge"}.get(ref.kind, f"{ref.kind} run")
        # The merges' names are those of `merges` and of the points each search chooses.
        kind_refs = sorted(m for m in loaded.model_refs if m.startswith(f"{ref.kind}/"))
        check_named([paths.parse(m).name for m in kind_refs], ref.name, what, params)
    result = run_stage(run, loaded, model)
    average = result["average"]

    def shown(value, unit=""):
        return "n/a" if value is None else f"{value:.2f}{unit}"

    unknown = {verdict: n for verdict, n in result["unknown"].items() if n}
    typer.echo(
        f"{model}: harmful rate {shown(average['harmful_rate'])}, harm change "
        f"{shown(average['harm_change'], ' %')}, win-rate {shown(average['win_rate'], ' %')}, "
        f"over-refusal {shown(average['over_refusal'])}; "
        + (
            "no verdict unknown"
            if not unknown
            else "verdicts unknown: " + ", ".join(f"{n} {kind}" for kind, n in unknown.items())
        )
    )


COMMANDS = {"evaluate": command}
