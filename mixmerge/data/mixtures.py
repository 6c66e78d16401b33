"""A mixture's records and manifest, and its rows in the conversational forms TRL's trainers
read (`sft`: messages; `preference`: prompt, chosen and rejected)."""

from __future__ import annotations

from typing import TypedDict

from mixmerge.config.mixtures import MixtureConfig
from mixmerge.core.errors import StageError
from mixmerge.core.records import Record
from mixmerge.data import mixing


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
FORM_ROWS = {
    "sft": (lambda r: r.has_sft, sft_row),
    "preference": (lambda r: r.has_preference, preference_row),
}


class Realised(TypedDict):
    safety_share: float
    examples: int


class Manifest(TypedDict):
    """A mixture's manifest.json (a DVC metric): what params asked for and what was drawn."""

    mixture: str
    requested: dict  # the mixture's params, and its languages
    realised: Realised
    counts: dict[str, dict[str, int]]  # per language, per objective
    safety_share_per_language: dict[str, float]


def build_mixture(
    name: str, mixture: MixtureConfig, languages: list[str], pool: list[Record]
) -> tuple[list[Record], Manifest]:
    """The records of mixture `name` and its manifest.

    One draw serves every form the mixture writes, so its SFT and preference sets hold the same
    prompts; only records that have all of those forms are drawn.
    """
    counts = mixing.allocate(
        languages, mixture.safety, mixture.size_per_language, mixture.size_total
    )
    usable = [FORM_ROWS[form][0] for form in mixture.forms]
    pool = [record for record in pool if all(has_form(record) for has_form in usable)]
    try:
        chosen = mixing.select(pool, counts, mixture.seed)
    except StageError as error:
        forms = " and ".join(mixture.forms)
        raise StageError(f"mixtures.{name} (train records with {forms}) {error}") from None
    manifest: Manifest = {
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
