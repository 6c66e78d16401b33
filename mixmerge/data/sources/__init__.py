"""Data sources, chosen by `kind` in `data.sources`: each turns one entry into records per split.

To add a kind: write a reader with the signature of `Reader`, add its schema to
`mixmerge/config/data.py`, and register it here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mixmerge.data.sources import builtin, table
from mixmerge.data.sources.output import SourceOutput

Reader = Callable[[str, Any, Sequence[str]], SourceOutput]

READERS: dict[str, Reader] = {"builtin": builtin.read, "hf": table.read, "files": table.read}


def read_source(name: str, config: Any, languages: Sequence[str]) -> SourceOutput:
    return READERS[config.kind](name, config, languages)


__all__ = ["READERS", "Reader", "SourceOutput", "read_source"]
