"""Generation backends by name; each is imported only when chosen."""

from __future__ import annotations

import importlib
from collections.abc import Callable

BACKENDS = {"hf": "mixmerge.generation.hf", "vllm": "mixmerge.generation.vllm"}


def backend(name: str) -> Callable[..., list[str]]:
    return importlib.import_module(BACKENDS[name]).generate
