"""The embedded world as a data source."""

from __future__ import annotations

from collections.abc import Sequence

from stages import world
from stages.core.config import BuiltinSource
from stages.sources.output import SourceOutput, kept_per_language


def read(name: str, config: BuiltinSource, languages: Sequence[str]) -> SourceOutput:
    sizes = {split: getattr(config, split).model_dump() for split in ("eval", "warmup", "train")}
    records = world.build_world(
        languages, sizes, config.seed, source=name, warmup_task_language=config.warmup_task_language
    )
    return SourceOutput(
        records=records,
        report={"kind": "builtin", "kept": kept_per_language(records, list(languages))},
        corpus=world.pretraining_corpus(languages, config.seed),
    )
