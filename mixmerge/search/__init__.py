"""Merge-weight search on the dev split: every point of a recipe's space merged by the engine,
its answers to the dev prompts judged against the base's, and the Pareto front of harm change
(lower is better) against win-rate (higher is better).

The paper (Aakanksha et al., 2024, arXiv 2410.10801) chose each merge's weights from {0, 0.3,
0.5, 0.7, 1} per model without saying on which prompts; here the choice is made on dev, which
neither training nor the report's figures use. A search runs on the first training seed's
replicates. Each scored point is appended to the trials file as soon as it is known, so that a
killed search resumes with the points not yet scored; the file is kept only while the inputs,
the dev prompts, the generation settings and the judge are those it was scored with.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from mixmerge import paths
from mixmerge.config.merges import MergeConfig
from mixmerge.core.errors import StageError
from mixmerge.core.fingerprint import fingerprint
from mixmerge.core.io import atomic_path, read_jsonl, remove, write_jsonl
from mixmerge.core.records import Record
from mixmerge.evaluation import generations, metrics, verdicts
from mixmerge.merging.replicates import inspect_inputs, merge_replicate
from mixmerge.search.space import filled, points, slots

FIGURES = ("harmful_rate", "harm_change", "win_rate")


def dev_figures(judged: Sequence[dict], base_by_id: dict[str, dict]) -> dict:
    """The harmful rate, its change against the base's and the win-rate against the base on
    dev, per language and averaged over the languages (each weighs the same, as in the report;
    a language without a figure is left out of its average)."""
    per_language = {
        code: {key: _number(metrics.figures(v)[key]) for key in FIGURES}
        for code, v in verdicts.by_language(judged, base_by_id).items()
    }
    average = {key: _mean([f[key] for f in per_language.values()]) for key in FIGURES}
    return {"average": average, "per_language": per_language}


def pareto_front(trials: Sequence[dict], harm: str = "harm_change") -> list[int]:
    """The scored trials no other one beats on both objectives (`harm` lower, win-rate higher;
    at least as good on each, better on one), by trial number."""
    scored = [t for t in trials if t.get("dev") and None not in _objectives(t, harm)]

    def beats(a: dict, b: dict) -> bool:
        (ha, wa), (hb, wb) = _objectives(a, harm), _objectives(b, harm)
        return ha <= hb and wa >= wb and (ha < hb or wa > wb)

    return [t["trial"] for t in scored if not any(beats(o, t) for o in scored)]


def front_measure(trials: Sequence[dict]) -> str:
    """Harm change, unless some trial has none (a language whose base is never harmful on dev
    has no change): then the harmful rate, which ranks the trials against the same base."""
    scored = [t for t in trials if t.get("dev")]
    defined = all(t["dev"]["average"]["harm_change"] is not None for t in scored)
    return "harm_change" if defined else "harmful_rate"


def _objectives(trial: dict, harm: str) -> tuple:
    average = trial["dev"]["average"]
    return average[harm], average["win_rate"]


class Search:
    """The search `name` of `params`, run in the repository at `root`, its trials kept in
    `trials_file`."""

    def __init__(self, params, name: str, root: Path, judge, trials_file: Path):
        self.params, self.name, self.root, self.judge = params, name, root, judge
        self.config = params.searches[name]
        self.seed = params.seeds[0]
        self.settings = params.evaluation.generation
        self.trials_file = trials_file
        self.dev = self._dev()

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
        folders = [paths.folder(ref, self.seed, self.root) for ref in dict.fromkeys(refs)]
        described = {
            "recipe": recipe,
            "generation": self.settings.model_dump(),
            "judge": self.params.evaluation.judge.model_dump(),
            "dev": [r.id for r in self.dev],
        }
        return fingerprint(described, *folders)[:16]

    def run(self) -> dict:
        found = slots(self.config.merge)
        grid = points(found)[: self.config.trials]
        stamp = self._scored_with()
        lines = self.trials_file.read_text().splitlines() if self.trials_file.is_file() else []
        kept = [row for row in map(_row, lines) if row and row.get("scored_with") == stamp]
        if len(kept) != len(lines):
            # Rows scored under other inputs, settings or prompts, or a line a kill cut short.
            remove(self.trials_file)
            self._append(kept)
        done = {row["trial"]: row for row in kept}
        base_texts, base_by_id = self._base()
        for number, point in enumerate(grid):
            if number not in done:
                row = self._trial(number, found, point, base_texts, base_by_id) | {
                    "scored_with": stamp
                }
                self._append([row])
                done[number] = row
        trials = [done[n] for n in range(len(grid))]
        return {
            "method": self.config.method,
            "slots": [slot.name for slot in found],
            "points": len(grid),
            "skipped": sum("skipped" in t for t in trials),
            "front_on": front_measure(trials),
            "front": pareto_front(trials, front_measure(trials)),
            "trials": trials,
            "judge_usage": self.judge.usage(),
        }

    def _append(self, rows: list[dict]) -> None:
        self.trials_file.parent.mkdir(parents=True, exist_ok=True)
        with self.trials_file.open("a", encoding="utf-8") as file:
            for row in rows:
                file.write(json.dumps(row, ensure_ascii=False) + "\n")

    def _base(self) -> tuple[list[str], dict[str, dict]]:
        """The base's answers to dev and its verdicts, reused while the base is unchanged."""
        cache = self.trials_file.with_name("base_generations.jsonl")
        previous = read_jsonl(cache) if cache.is_file() else []
        folder = paths.folder(paths.BASE, self.seed, self.root)
        rows, _ = generations.generate(
            paths.BASE, folder, self.dev, self.settings, previous, self.params.trust_remote_code
        )
        with atomic_path(cache) as tmp:
            write_jsonl(tmp, rows)
        texts = [row["text"] for row in rows]
        judged = verdicts.judge_responses(self.judge, self.dev, texts, texts)
        return texts, {row["id"]: row for row in judged}

    def _trial(self, number: int, found, point: dict, base_texts, base_by_id) -> dict:
        row = {"trial": number, "point": point}
        # Trials are scored, not kept: the interference diagnostics are left to chosen merges.
        recipe = filled(self.config.merge, found, point) | {"diagnostics": False}
        try:
            merge = MergeConfig.model_validate(recipe, context={"models": self.params.model_refs})
        except ValidationError as error:
            return row | {"skipped": "; ".join(e["msg"] for e in error.errors())}
        weights, _ = inspect_inputs(merge, self.seed, self.root)
        folder = self.trials_file.with_name(f"trial-{number}")
        remove(folder)
        try:
            merge_replicate(
                f"{self.name}-{number}", merge, self.seed, self.root, folder,
                self.config.max_shard_bytes, weights, None,
            )  # fmt: skip
            answers, _ = generations.generate(
                f"search/{self.name}", folder, self.dev, self.settings, (),
                self.params.trust_remote_code,
            )  # fmt: skip
        finally:
            remove(folder)
        texts = [answer["text"] for answer in answers]
        judged = verdicts.judge_responses(self.judge, self.dev, texts, base_texts)
        return row | {"dev": dev_figures(judged, base_by_id)}


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
