"""The prepared records: every data source read into train, eval and warm-up records per
language and objective (data/prepared/<split>/<language>/<objective>.jsonl), and the corpus."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mixmerge.config import StudyConfig
from mixmerge.core.errors import StageError
from mixmerge.core.io import atomic_path, read_jsonl, write_jsonl
from mixmerge.core.records import OBJECTIVES, SPLITS, Record, prompt_key
from mixmerge.data.sources import read_source


def prepare_records(params: StudyConfig) -> tuple[dict[str, list[Record]], list[dict], dict]:
    """Records per split, the corpus, and the report. A prompt held out for eval by any source
    is dropped from every other split, and one held out for dev from training, so that no model
    trains on what it is judged on or chosen by; a train prompt without an answer (a
    synthesis's seed) is not trained on."""
    per_source = {
        name: read_source(name, source, params.languages)
        for name, source in params.data.sources.items()
    }
    splits: dict[str, list[Record]] = {split: [] for split in SPLITS}
    dropped: Counter = Counter()
    # Held-out splits come first, eval before dev: a prompt is in one split only, and never
    # trained on once held out.
    seen: dict[str, set[tuple[str, str]]] = {"eval": set(), "dev": set(), "trained": set()}
    for split in ("eval", "dev", "warmup", "train"):
        trained = split in ("warmup", "train")
        for output in per_source.values():
            for record in output.records.get(split, []):
                if trained and not (record.has_sft or record.has_preference):
                    # A synthesis's seeds: its stage answers them, and its output is trained on.
                    dropped["prompts only (the seeds of a synthesis)"] += 1
                    continue
                key = (record.language, prompt_key(record.prompt))
                if split != "eval" and key in seen["eval"]:
                    dropped["prompt also in eval"] += 1
                    continue
                if trained and key in seen["dev"]:
                    dropped["prompt also in dev"] += 1
                    continue
                group = seen["trained" if trained else split]
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


def read_split(prepared: Path, split: str, languages: Sequence[str]) -> list[Record]:
    """A prepared split's records in `languages`, in a fixed order (language, objective)."""
    return [
        Record.from_json(row)
        for language in languages
        for path in sorted((prepared / split / language).glob("*.jsonl"))
        for row in read_jsonl(path)
    ]


def read_eval_split(prepared: Path, languages: Sequence[str]) -> list[Record]:
    """The prepared eval split, every language and objective, in a fixed order; it must hold
    records, and only in the study's languages."""
    folder = prepared / "eval"
    if not folder.is_dir():
        raise StageError(f"no {folder}: run `dvc repro prepare` first")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    undeclared = sorted(set(found) - set(languages))
    if undeclared:
        raise StageError(
            f"the eval set in {folder} has languages the study does not declare: "
            f"{', '.join(undeclared)} (params `languages`: {', '.join(languages)})"
        )
    records = read_split(prepared, "eval", found)
    if not records:
        raise StageError(f"the eval set in {folder} is empty")
    return records
