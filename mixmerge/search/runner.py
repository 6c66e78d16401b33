"""Merge-weight search on the dev split: points of a recipe's space (the grid's, or drawn by
NSGA-II in `sampler`) merged by the engine, their answers to the dev prompts judged against the
base's, and the Pareto front of harm change (lower is better) against win-rate (higher).

The paper (Aakanksha et al., 2024, arXiv 2410.10801) chose each merge's weights from {0, 0.3,
0.5, 0.7, 1} per model without saying on which prompts; here the choice is made on dev, which
neither training nor the report's figures use. A search runs on the first training seed's
replicates; the two points it chooses from the front (`chosen`) are then merged for every seed
and judged on eval like any merge, so that the report can say how much of the dev figure was
selection. Each scored point is appended to the trials file as soon as it is known, so that a
killed search resumes with the points not yet scored; the file is kept only while the search (but
its budget and its bar), the inputs, the dev prompts, the generation settings, the judge and the
harm classifier are those it was scored with. Points are judged as the evaluate stage judges
(`mixmerge.evaluation.evaluate`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

import numpy as np
from pydantic import ValidationError

from mixmerge import paths
from mixmerge.config.merges import MergeConfig
from mixmerge.core.errors import StageError
from mixmerge.core.fingerprint import fingerprint
from mixmerge.core.io import atomic_path, read_jsonl, remove, write_jsonl
from mixmerge.core.records import Record
from mixmerge.evaluation import metrics, verdicts
from mixmerge.evaluation.evaluate import Judges, evaluate
from mixmerge.merging import mergeability
from mixmerge.merging.recipe import canonical
from mixmerge.merging.registry import merge_context
from mixmerge.merging.replicates import inspect_inputs, measure_replicate, merge_replicate
from mixmerge.search.sampler import propose
from mixmerge.search.space import filled, points, slots

FIGURES = ("harmful_rate", "harm_change", "win_rate")


class DevFigures(TypedDict):
    """A model's `FIGURES` on dev, averaged over languages and per language (None where one
    cannot be computed)."""

    average: dict[str, float | None]
    per_language: dict[str, dict[str, float | None]]


class Trial(TypedDict, total=False):
    """A row of a search's trials.jsonl: a point of its space and what it scored on dev."""

    trial: int
    point: dict[str, float]  # by slot name (`models.[1].weight`)
    dev: DevFigures
    same_as: int  # the earlier trial whose merge this point's is: scored once
    skipped: str  # why the merge refuses the point
    held_out_loss: dict[str, float]  # per language, where a probe measures it
    scored_with: str  # the stamp of what it was scored with; other stamps are scored again
    sampler: dict  # how NSGA-II drew the point


class SearchReport(TypedDict):
    """reports/searches/<name>.json: every trial, the front, the chosen points."""

    method: str
    slots: list[str]
    points: int
    skipped: int
    same_merges: int
    scored: int
    front_on: str  # the harm figure the front is taken on
    front: list[int]
    chosen: dict[str, Trial]  # `best` (with `clears_bar`) and `knee`
    trials: list[Trial]
    references: dict[str, DevFigures]
    mergeability: dict | None
    judge_usage: dict


def dev_figures(judged: Sequence[dict], base_judged: Sequence[dict]) -> DevFigures:
    """The harmful rate, its change against the base's and the win-rate against the base on
    dev, of one replicate judged against its seed's base (`base_judged`), per language and
    averaged over the languages (each weighs the same, as in the report; a language without a
    figure is left out of its average)."""
    per_language = {
        code: {key: _number(metrics.figures(v)[key]) for key in FIGURES}
        for code, v in verdicts.by_language(judged, base_judged).items()
    }
    average = {key: _mean([f[key] for f in per_language.values()]) for key in FIGURES}
    return {"average": average, "per_language": per_language}


def pareto_front(trials: Sequence[Trial], harm: str = "harm_change") -> list[int]:
    """The scored trials no other one beats on both objectives (`harm` lower, win-rate higher;
    at least as good on each, better on one), by trial number; a trial that repeats an earlier
    one's merge (`same_as`) stands for it only once."""
    scored = [
        t
        for t in trials
        if t.get("dev") and "same_as" not in t and None not in _objectives(t, harm)
    ]

    def beats(a: dict, b: dict) -> bool:
        (ha, wa), (hb, wb) = _objectives(a, harm), _objectives(b, harm)
        return ha <= hb and wa >= wb and (ha < hb or wa > wb)

    return [t["trial"] for t in scored if not any(beats(o, t) for o in scored)]


def front_measure(trials: Sequence[Trial]) -> str:
    """Harm change, unless some trial has none (a language whose base is never harmful on dev
    has no change): then the harmful rate, which ranks the trials against the same base."""
    scored = [t for t in trials if t.get("dev")]
    defined = all(t["dev"]["average"]["harm_change"] is not None for t in scored)
    return "harm_change" if defined else "harmful_rate"


def chosen(
    trials: Sequence[Trial], front: Sequence[int], harm: str, bar: DevFigures
) -> dict[str, Trial]:
    """The points a search picks from its front: `best`, the highest win-rate whose `harm` is
    no worse than the bar's figures (ties go to the lower harm, then the earlier trial), or,
    when no trial clears the bar, the lowest harm (`clears_bar` says which); and `knee`, the
    point nearest the ideal in objectives scaled to the front's range. Empty without a front."""
    by_number = {t["trial"]: t for t in trials}
    on_front = [by_number[n] for n in front]
    if not on_front:
        return {}
    limit = bar["average"][harm]
    cleared = [t for t in on_front if limit is not None and _objectives(t, harm)[0] <= limit]
    if cleared:
        best = min(cleared, key=lambda t: (-_objectives(t, harm)[1], _objectives(t, harm)[0]))
    else:
        best = min(on_front, key=lambda t: (_objectives(t, harm)[0], -_objectives(t, harm)[1]))
    harms, wins = zip(*(_objectives(t, harm) for t in on_front), strict=True)

    def distance(t: dict) -> float:
        h, w = _objectives(t, harm)
        return _gap(h, min(harms), max(harms)) ** 2 + _gap(w, max(wins), min(wins)) ** 2

    knee = min(on_front, key=distance)
    picks = {"best": best | {"clears_bar": bool(cleared)}, "knee": knee}
    return {
        name: {k: t[k] for k in ("trial", "point", "dev", "clears_bar") if k in t}
        for name, t in picks.items()
    }


def _gap(value: float, best: float, worst: float) -> float:
    """How far `value` is from `best`, as a share of the way from `best` to `worst`."""
    return (value - best) / (worst - best) if worst != best else 0.0


def _objectives(trial: dict, harm: str) -> tuple:
    average = trial["dev"]["average"]
    return average[harm], average["win_rate"]


class Search:
    """The search `name` of `params`, run in the repository at `root`, its trials kept in
    `trials_file`."""

    def __init__(self, params, name: str, root: Path, judges: Judges, trials_file: Path):
        self.params, self.name, self.root, self.judges = params, name, root, judges
        self.config = params.searches[name]
        self.seed = params.seeds[0]
        self.settings = params.evaluation.generation
        self.trials_file = trials_file
        self.found = slots(self.config.merge)
        self.dev = self._dev()
        self.probe = mergeability.probe(params, root)

    def _dev(self) -> list[Record]:
        from mixmerge.data.prepared import read_split

        dev = read_split(self.root / paths.PREPARED, "dev", self.params.languages)
        if not dev:
            raise StageError(
                f"searches.{self.name}: the dev split is empty: run `dvc repro prepare` with "
                "dev prompts in params"
            )
        return dev

    def _scored_with(self) -> str:
        """What a trial's figures depend on beyond its point: a change voids the trials file."""
        recipe = self.config.merge
        refs = [m["model"] for m in recipe["models"]] + (
            [recipe["base"]] if "base" in recipe else []
        )
        refs += self.config.references
        folders = [paths.folder(ref, self.seed, self.root) for ref in dict.fromkeys(refs)]
        described = {
            # All but the budget and the bar: a search given more trials goes on from the ones
            # it has, and one given another bar chooses again from them.
            "search": self.config.model_dump(
                exclude={"trials", "max_shard_bytes", "choose_against"}
            ),
            "generation": self.settings.model_dump(),
            "judge": self.params.evaluation.judge.model_dump(),
            # Only when there is one, so that trials scored before it was a key stay valid.
            **(
                {"harm_classifier": classifier.model_dump()}
                if (classifier := self.params.evaluation.harm_classifier)
                else {}
            ),
            "dev": [r.id for r in self.dev],
            "mergeability": self.probe
            and {
                "settings": self.probe.settings.model_dump(),
                "held_out": [r.id for r in self.probe.records],
            },
        }
        return fingerprint(described, *folders)[:16]

    def run(self) -> SearchReport:
        found = self.found
        grid = self.config.method == "grid"
        planned = points(found)[: self.config.trials] if grid else []
        total = len(planned) if grid else self.config.trials
        stamp = self._scored_with()
        lines = self.trials_file.read_text().splitlines() if self.trials_file.is_file() else []
        kept = [row for row in map(_row, lines) if row and row.get("scored_with") == stamp]
        if len(kept) != len(lines):
            # Rows scored under other inputs, settings or prompts, or a line a kill cut short.
            remove(self.trials_file)
            self._append(kept)
        done = {row["trial"]: row for row in kept if "trial" in row}
        scored = {row["reference"]: row for row in kept if "reference" in row}
        paths_row = next((row for row in kept if "mergeability" in row), None)
        base_texts, base_judged = self._base()
        for ref in self.config.references:
            if ref not in scored:
                folder = paths.folder(ref, self.seed, self.root)
                figures = self._score(ref, folder, base_texts, base_judged)
                scored[ref] = {"reference": ref, "dev": figures, "scored_with": stamp}
                self._append([scored[ref]])
        merged = {  # a recipe's canonical form: the trial that merged it
            _form(self.merge_at(row["point"])): number
            for number, row in sorted(done.items())
            if "dev" in row and "same_as" not in row
        }
        for number in range(total):
            if number in done:
                continue
            if grid:
                point, marks = planned[number], {}
            else:
                history = [done[k] for k in range(number)]
                point, marks = propose(found, history, self.config.seed, self.config.population)
            try:
                merge = self.merge_at(point)
            except ValidationError as error:
                refused = "; ".join(e["msg"] for e in error.errors())
                row = {"trial": number, "point": point, "skipped": refused}
            else:
                form = _form(merge)
                if form in merged:
                    # A point NSGA-II drew before, or the same merge as an earlier point's
                    # (weights in proportion, where the method normalizes): scored once.
                    same = merged[form]
                    row = {"trial": number, "point": point, "dev": done[same]["dev"]}
                    row["same_as"] = same
                else:
                    row = self._trial(number, point, merge, base_texts, base_judged)
                    merged[form] = number
            row |= {"scored_with": stamp} | ({"sampler": marks} if marks else {})
            self._append([row])
            done[number] = row
        trials = [done[n] for n in range(total)]
        if self.probe is not None and paths_row is None:
            paths_row = {"mergeability": self._paths(trials), "scored_with": stamp}
            self._append([paths_row])
        measure = front_measure(trials)
        front = pareto_front(trials, measure)
        picks = chosen(trials, front, measure, scored[self.config.choose_against]["dev"])
        if not picks:
            raise StageError(
                f"searches.{self.name}: no point of the search could be scored "
                f"({trials[0].get('skipped', 'none was')}): nothing to choose"
            )
        return {
            "method": self.config.method,
            "slots": [slot.name for slot in found],
            "points": total,
            "skipped": sum("skipped" in t for t in trials),
            "same_merges": sum("same_as" in t for t in trials),
            "scored": sum("dev" in t and "same_as" not in t for t in trials),
            "front_on": measure,
            "front": front,
            "chosen": picks,
            "trials": trials,
            "references": {ref: scored[ref]["dev"] for ref in self.config.references},
            "mergeability": paths_row["mergeability"] if paths_row else None,
            "judge_usage": self.judges.judge.usage(),
        }

    def _append(self, rows: list[dict]) -> None:
        self.trials_file.parent.mkdir(parents=True, exist_ok=True)
        with self.trials_file.open("a", encoding="utf-8") as file:
            for row in rows:
                file.write(json.dumps(row, ensure_ascii=False) + "\n")

    def _base(self) -> tuple[list[str], list[dict]]:
        """The base's answers to dev and its verdicts, reused while the base is unchanged."""
        cache = self.trials_file.with_name("base_generations.jsonl")
        previous = read_jsonl(cache) if cache.is_file() else []

        def keep(rows: list[dict]) -> None:
            with atomic_path(cache) as tmp:
                write_jsonl(tmp, rows)

        folder = paths.folder(paths.BASE, self.seed, self.root)
        base = evaluate(
            paths.BASE, {None: folder}, self.dev, self.settings, self.judges, None, previous,
            self.params.trust_remote_code, keep,
        )  # fmt: skip
        return [row["text"] for row in base.generations], base.judgments

    def merge_at(self, point: dict, diagnostics: bool = False) -> MergeConfig:
        """The merge at `point`; a ValidationError where the merge refuses it (weights that
        sum to zero). Trials are scored, not kept: diagnostics are left to the chosen merges."""
        recipe = filled(self.config.merge, self.found, point)
        return MergeConfig.model_validate(
            recipe | ({} if diagnostics else {"diagnostics": False}),
            context=merge_context(self.params.model_refs),
        )

    def _trial(
        self, number: int, point: dict, merge: MergeConfig, base_texts, base_judged
    ) -> Trial:
        weights, _ = inspect_inputs(merge, self.seed, self.root)
        folder = self.trials_file.with_name(f"trial-{number}")
        remove(folder)
        try:
            merge_replicate(
                f"{self.name}-{number}", merge, self.seed, self.root, folder,
                self.config.max_shard_bytes, weights, None,
            )  # fmt: skip
            figures = self._score(f"search/{self.name}", folder, base_texts, base_judged)
            loss = self._loss(folder)
        finally:
            remove(folder)
        return {"trial": number, "point": point, "dev": figures} | loss

    def _loss(self, folder: Path) -> dict:
        """The point's held-out loss per language: where it lies against its models' path."""
        if self.probe is None:
            return {}
        probe = self.probe
        found = mergeability.loss_of(folder, probe.records, probe.settings, probe.trust_remote_code)
        return {"held_out_loss": {code: round(loss, 6) for code, loss in found.items()}}

    def _paths(self, trials: Sequence[Trial]) -> dict | None:
        """The path between the models every point merges, for the search's seed (from any
        point the merge accepts: they differ in weights only)."""
        merge = next((self.merge_at(t["point"]) for t in trials if "dev" in t), None)
        if merge is None:
            return None
        return measure_replicate(merge, self.seed, self.root, None, self.probe).to_json()

    def _score(self, model: str, folder: Path, base_texts, base_judged) -> DevFigures:
        """A model's figures on dev: its answers, judged against the base's."""
        evaluated = evaluate(
            model, {None: folder}, self.dev, self.settings, self.judges, {None: base_texts},
            (), self.params.trust_remote_code,
        )  # fmt: skip
        return dev_figures(evaluated.judgments, base_judged)


def _form(merge: MergeConfig) -> str:
    return json.dumps(canonical(merge), sort_keys=True)


def _row(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row if isinstance(row, dict) else None


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 4) if known else None


def _number(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 4)
