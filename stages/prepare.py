"""Stage `prepare`: read every data source and write train, eval and warm-up records per
language and objective, the pretraining corpus, and a report of what was kept and skipped."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from stages.core.config import Params
from stages.core.io import atomic_path, write_json, write_jsonl
from stages.core.records import OBJECTIVES, SPLITS, Record, prompt_key
from stages.sources import read_source

PREPARED = Path("data/prepared")
REPORT = Path("reports/prepare.json")


def prepare(params: Params) -> tuple[dict[str, list[Record]], list[dict], dict]:
    """Records per split, the corpus, and the report. A prompt held out for eval by any source
    is dropped from every other split, so that no model trains on what it is judged on."""
    per_source = {
        name: read_source(name, source, params.languages)
        for name, source in params.data.sources.items()
    }
    splits: dict[str, list[Record]] = {split: [] for split in SPLITS}
    dropped: Counter = Counter()
    seen: dict[str, set[tuple[str, str]]] = {"eval": set(), "trained": set()}
    for split in ("eval", "warmup", "train"):
        for output in per_source.values():
            for record in output.records.get(split, []):
                key = (record.language, prompt_key(record.prompt))
                if split != "eval" and key in seen["eval"]:
                    dropped["prompt also in eval"] += 1
                    continue
                group = seen["eval" if split == "eval" else "trained"]
                if key in group:
                    dropped["duplicate prompt across sources or splits"] += 1
                    continue
                group.add(key)
                splits[split].append(record)
    counts = Counter((s, r.language, r.objective) for s, rows in splits.items() for r in rows)
    report = {
        "counts": {
            split: {
                code: {o: counts[split, code, o] for o in OBJECTIVES if counts[split, code, o]}
                for code in params.languages
            }
            for split in SPLITS
        },
        "dropped_across_sources": dict(dropped),
        "sources": {name: output.report for name, output in per_source.items()},
    }
    corpus = [doc for output in per_source.values() for doc in output.corpus]
    return splits, corpus, report


def write_prepared(splits: dict[str, list[Record]], corpus: list[dict], out: Path) -> None:
    with atomic_path(out) as tmp:
        for split, records in splits.items():
            (tmp / split).mkdir(parents=True)  # present even when empty: later stages depend on it
            groups: dict[tuple[str, str], list[dict]] = {}
            for record in records:
                groups.setdefault((record.language, record.objective), []).append(record.to_json())
            for (language, objective), rows in sorted(groups.items()):
                write_jsonl(tmp / split / language / f"{objective}.jsonl", rows)
        write_jsonl(tmp / "corpus.jsonl", corpus)


def run(params: Params, out: Path = PREPARED, report_path: Path = REPORT) -> dict:
    splits, corpus, report = prepare(params)
    write_prepared(splits, corpus, out)
    with atomic_path(report_path) as tmp:
        write_json(tmp, report)
    return report
