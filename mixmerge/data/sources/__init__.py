"""Data sources, chosen by `kind` in `data.sources`: each turns one entry into records per split.

To add a kind: write a reader with the signature of `Reader`, add its schema to
`mixmerge/config/data.py`, and register it here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mixmerge import paths
from mixmerge.core.records import Record
from mixmerge.data.sources import builtin, generated, table
from mixmerge.data.sources.output import SourceOutput
from mixmerge.inputs import absolute, local_files

Reader = Callable[[str, Any, Sequence[str]], SourceOutput]

READERS: dict[str, Reader] = {
    "builtin": builtin.read,
    "hf": table.read,
    "files": table.read,
    "generated": generated.read,
}


def read_source(name: str, config: Any, languages: Sequence[str]) -> SourceOutput:
    return READERS[config.kind](name, config, languages)


def named_files(sources: Mapping[str, Any], root: Path = paths.ROOT) -> list[Path]:
    """Every local file the sources read, absolute: what their patterns match, and the files of
    a local dataset folder (a hub id names none)."""
    found = []
    for config in sources.values():
        if config.kind == "files":
            groups = config.files_by_language.values() if config.files_by_language else []
            for pattern in [*(config.files or []), *(p for g in groups for p in g)]:
                found += [absolute(f) for f in table.matching(str(absolute(pattern, root)))]
        elif config.kind == "hf":
            found += local_files(config.dataset, root)
    return found


def split_of(
    name: str, config: Any, languages: Sequence[str], split: str, max_per_language: int | None
) -> tuple[list[Record], dict]:
    """One split of a source's records, at most `max_per_language` per language (a seeded
    sample, as a source's own `max_per_language` draws, kept in the source's order), and the
    source's report: what a translation or a synthesis reads."""
    output = read_source(name, config, languages)
    records = output.records.get(split, [])
    if max_per_language is None:
        return records, output.report
    kept: list[Record] = []
    for language in dict.fromkeys(record.language for record in records):
        rows = [record for record in records if record.language == language]
        if len(rows) > max_per_language:
            chosen = random.Random(f"{name}:{split}:{language}").sample(
                range(len(rows)), max_per_language
            )
            rows = [rows[i] for i in sorted(chosen)]
        kept += rows
    return kept, output.report


def check_sources(sources: Mapping[str, Any], languages: Sequence[str]) -> list[str]:
    """Problems `prepare` would meet in the local files of `sources`, found without reading
    them whole (`mixmerge validate` reports them); hub and builtin sources are not opened."""
    return [
        problem
        for name, config in sources.items()
        if config.kind == "files"
        for problem in table.check_files(name, config, languages)
    ]


__all__ = ["READERS", "Reader", "SourceOutput", "check_sources", "read_source", "split_of"]
