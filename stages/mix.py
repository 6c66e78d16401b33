"""Stage `mix@<mixture>`: draw a mixture's SFT and preference sets from the prepared train
records, with its safety share, and write a manifest of what was realised."""

from __future__ import annotations

from pathlib import Path

from stages.core import mixing
from stages.core.config import Params
from stages.core.io import atomic_path, read_jsonl, write_json, write_jsonl
from stages.core.records import Record
from stages.prepare import PREPARED

MIXTURES = Path("data/mixtures")


def load_split(prepared: Path, split: str, languages: list[str]) -> list[Record]:
    return [
        Record.from_json(row)
        for language in languages
        for path in sorted((prepared / split / language).glob("*.jsonl"))
        for row in read_jsonl(path)
    ]


def sft_row(record: Record) -> dict:
    """TRL's conversational form, with the record's labels kept for analysis."""
    return {
        **_labels(record),
        "messages": [
            {"role": "user", "content": record.prompt},
            {"role": "assistant", "content": record.response},
        ],
    }


def preference_row(record: Record) -> dict:
    return {
        **_labels(record),
        "prompt": [{"role": "user", "content": record.prompt}],
        "chosen": [{"role": "assistant", "content": record.chosen}],
        "rejected": [{"role": "assistant", "content": record.rejected}],
    }


def _labels(record: Record) -> dict:
    return {
        "id": record.id,
        "language": record.language,
        "objective": record.objective,
        "category": record.category,
    }


def build_mixture(params: Params, name: str, pool: list[Record]):
    """The SFT records, the preference records and the manifest of mixture `name`."""
    mixture = params.mixtures[name]
    languages = params.mixture_languages(name)
    counts = mixing.allocate(
        languages, mixture.safety, mixture.size_per_language, mixture.size_total
    )
    mixing.check_share(name, mixture.safety, counts)
    sft = mixing.select(name, pool, counts, mixture.seed, lambda r: r.has_sft, "SFT")
    preference = mixing.select(
        name, pool, counts, mixture.seed, lambda r: r.has_preference, "preference"
    )
    manifest = {
        "mixture": name,
        "requested": mixture.model_dump(exclude_none=True) | {"languages": languages},
        "realised": {
            "safety_share": round(mixing.realised_share(counts), 6),
            "sft_examples": len(sft),
            "preference_examples": len(preference),
        },
        "counts": counts,
        "safety_share_per_language": {
            code: round(c["safety"] / (c["safety"] + c["general"]), 6) for code, c in counts.items()
        },
    }
    return sft, preference, manifest


def run(params: Params, name: str, prepared: Path = PREPARED, out: Path = MIXTURES) -> dict:
    pool = load_split(prepared, "train", params.mixture_languages(name))
    sft, preference, manifest = build_mixture(params, name, pool)
    with atomic_path(out / name) as tmp:
        write_jsonl(tmp / "sft.jsonl", map(sft_row, sft))
        write_jsonl(tmp / "preference.jsonl", map(preference_row, preference))
        write_json(tmp / "manifest.json", manifest)
    return manifest
