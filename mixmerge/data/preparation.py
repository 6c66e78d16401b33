"""Preparation: every data source read into train, eval and warm-up records per language and
objective, and the corpus (mixmerge/data/prepared.py writes and reads them)."""

from __future__ import annotations

from collections import Counter

from mixmerge.config import StudyConfig
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
                    # A synthesis's seed prompts: its stage answers them; its output is trained on.
                    dropped["prompts only (the seed prompts of a synthesis)"] += 1
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
