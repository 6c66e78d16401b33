"""The embedded world as a data source."""

from __future__ import annotations

from collections.abc import Sequence

from mixmerge import world
from mixmerge.config.data import BuiltinSourceConfig
from mixmerge.data.sources.output import SourceOutput, kept_per_language


def read(name: str, config: BuiltinSourceConfig, languages: Sequence[str]) -> SourceOutput:
    sizes = {split: getattr(config, split).model_dump() for split in world.SPLIT_ORDER}
    records = world.build_world(
        languages,
        sizes,
        config.seed,
        source=name,
        warmup_task_language=config.warmup_task_language,
        warmup_task_language_share=config.warmup_task_language_share,
        warmup_refusal_share=config.warmup_refusal_share,
    )
    return SourceOutput(
        records=records,
        report={"kind": "builtin", "kept": kept_per_language(records, list(languages))},
        corpus=world.pretraining_corpus(languages, config.seed),
    )
