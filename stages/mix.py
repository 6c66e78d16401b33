"""Stage `mix@<mixture>`: draw a mixture's SFT and preference sets from the prepared train
records, with its safety share, and write a manifest of what was realised (a DVC metric)."""

from __future__ import annotations

from pathlib import Path

from stages.core import mixing
from stages.core.config import Params
from stages.core.errors import StageError
from stages.core.io import atomic_path, read_jsonl, write_json, write_jsonl
from stages.core.records import Record
from stages.prepare import PREPARED

MIXTURES = Path("data/mixtures")
MANIFESTS = Path("reports/mixtures")


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


# form -> (whether a record has it, its row in the form's file)
FORMS = {
    "sft": (lambda r: r.has_sft, sft_row),
    "preference": (lambda r: r.has_preference, preference_row),
}


def build_mixture(params: Params, name: str, pool: list[Record]) -> tuple[list[Record], dict]:
    """The records of mixture `name` and its manifest.

    One draw serves every form the mixture writes, so its SFT and preference sets hold the same
    prompts; only records that have all of those forms are drawn.
    """
    mixture = params.mixtures[name]
    languages = params.mixture_languages(name)
    counts = mixing.allocate(
        languages, mixture.safety, mixture.size_per_language, mixture.size_total
    )
    usable = [FORMS[form][0] for form in mixture.forms]
    pool = [record for record in pool if all(has_form(record) for has_form in usable)]
    try:
        chosen = mixing.select(pool, counts, mixture.seed)
    except StageError as error:
        forms = " and ".join(mixture.forms)
        raise StageError(f"mixtures.{name} (train records with {forms}) {error}") from None
    manifest = {
        "mixture": name,
        "requested": mixture.model_dump(exclude_none=True) | {"languages": languages},
        "realised": {
            "safety_share": round(mixing.realised_share(counts), 6),
            "examples": len(chosen),
        },
        "counts": counts,
        "safety_share_per_language": {
            code: round(c["safety"] / (c["safety"] + c["general"]), 6) for code, c in counts.items()
        },
    }
    return chosen, manifest


def run(
    params: Params,
    name: str,
    prepared: Path = PREPARED,
    out: Path = MIXTURES,
    manifests: Path = MANIFESTS,
) -> dict:
    pool = load_split(prepared, "train", params.mixture_languages(name))
    chosen, manifest = build_mixture(params, name, pool)
    with atomic_path(out / name) as tmp:
        for form in params.mixtures[name].forms:
            write_jsonl(tmp / f"{form}.jsonl", map(FORMS[form][1], chosen))
    with atomic_path(manifests / f"{name}.json") as tmp:
        write_json(tmp, manifest)
    return manifest
