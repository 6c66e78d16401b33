"""What the report reads: each evaluated model's metrics and item verdicts, aligned by prompt."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mixmerge import paths
from mixmerge.core.errors import StageError
from mixmerge.core.io import read_jsonl
from mixmerge.evaluation import metrics
from mixmerge.evaluation.metrics import Verdicts
from mixmerge.evaluation.verdicts import by_language


@dataclass
class Evaluated:
    model: str
    summary: dict  # reports/eval/<model>.json
    rows: list[dict]  # its judgments, in eval-set order
    base_rows: list[dict]  # the base's judgments, each replicate's

    @cached_property
    def verdicts(self) -> dict[str, Verdicts]:
        return by_language(self.rows, self.base_rows, self.replicates)

    @property
    def replicates(self) -> list[str]:
        return self.summary["replicates"]

    def average(self, metric: str) -> float | None:
        return self.summary["average"][metric]

    def interval(self, metric: str) -> dict:
        return self.summary["average"][f"{metric}_ci"]

    def per_seed(self, metric: str) -> dict[str, float | None]:
        return self.summary["average"][f"{metric}_seeds"]

    def spread(self, metric: str) -> float | None:
        """The seed-to-seed range of the figure averaged over languages."""
        return metrics.spread(self.per_seed(metric))


class Results:
    """Every evaluated model under `root`, read once."""

    def __init__(self, root: Path = Path(".")):
        self.root = root
        self._cache: dict[str, Evaluated] = {}
        self.base_rows = self._rows(paths.BASE)

    def _rows(self, model: str) -> list[dict]:
        path = paths.evaluation(model, self.root)["judgments"]
        if not path.is_file():
            raise StageError(f"no {path}: run the evaluation of {model} first")
        return read_jsonl(path)

    def __getitem__(self, model: str) -> Evaluated:
        if model not in self._cache:
            path = paths.evaluation(model, self.root)["metrics"]
            if not path.is_file():
                raise StageError(f"no {path}: run the evaluation of {model} first")
            summary = json.loads(path.read_text())
            self._cache[model] = Evaluated(model, summary, self._rows(model), self.base_rows)
        return self._cache[model]

    def every_model(self) -> list[str]:
        """Every model with metrics, base first."""
        folder = self.root / paths.EVAL_REPORTS
        found = sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.json"))
        return sorted(found, key=lambda m: (m != paths.BASE, paths.parse(m).kind != "sft", m))

    def difference(self, model: str, baseline: str, bootstrap) -> dict:
        """`model` − `baseline` on the same prompts, per metric, with a paired interval."""
        mine, theirs = self[model], self[baseline]
        if [r["id"] for r in mine.rows] != [r["id"] for r in theirs.rows]:
            raise StageError(f"{model} and {baseline} were not judged on the same prompts")
        return metrics.difference(
            mine.verdicts,
            theirs.verdicts,
            samples=bootstrap.samples,
            seed=bootstrap.seed,
            confidence=bootstrap.confidence,
        )
