"""The prepared records on disk (data/prepared/<split>/<language>/<objective>.jsonl, and the
corpus): written by the prepare stage (mixmerge/data/preparation.py makes them), read by every
stage after it. Reading them needs no data source."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mixmerge.core.errors import StageError
from mixmerge.core.io import atomic_path, read_jsonl, write_jsonl
from mixmerge.core.records import Record


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
