"""Data sources, chosen by `kind` in `data.sources`: each turns one entry into records per split.

To add a kind: write a reader with the signature of `Reader`, add its schema to
`mixmerge/config/data.py`, and register it here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mixmerge.data.sources import builtin, table
from mixmerge.data.sources.output import SourceOutput

Reader = Callable[[str, Any, Sequence[str]], SourceOutput]

READERS: dict[str, Reader] = {"builtin": builtin.read, "hf": table.read, "files": table.read}


def read_source(name: str, config: Any, languages: Sequence[str]) -> SourceOutput:
    return READERS[config.kind](name, config, languages)


def check_sources(sources: Mapping[str, Any], languages: Sequence[str]) -> list[str]:
    """Problems `prepare` would meet in the local files of `sources`, found without reading
    them whole (`mixmerge validate` reports them); hub and builtin sources are not opened."""
    return [
        problem
        for name, config in sources.items()
        if config.kind == "files"
        for problem in table.check_files(name, config, languages)
    ]


__all__ = ["READERS", "Reader", "SourceOutput", "check_sources", "read_source"]
