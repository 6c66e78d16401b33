"""The embedded world as a data source."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from stages import world
from stages.sources.output import SourceOutput


def read(name: str, config, languages: Sequence[str]) -> SourceOutput:
    sizes = {split: getattr(config, split).model_dump() for split in ("eval", "warmup", "train")}
    records = world.build_world(languages, sizes, config.seed)
    kept = Counter((r.language, split) for split, rows in records.items() for r in rows)
    return SourceOutput(
        records=records,
        report={
            "kind": "builtin",
            "kept": {lang: {s: kept[lang, s] for s in records} for lang in languages},
            "skipped": {},
        },
        corpus=world.pretraining_corpus(languages, config.seed),
    )
