"""A model's responses to the eval prompts, reused while nothing they depend on changes.

Each row says what it came from: the model's content digest, the backend and its settings (the
fingerprint), the prompt's id and text. A rerun generates only the prompts no row answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from mixmerge.config.evaluation import GenerationConfig
from mixmerge.core.fingerprint import fingerprint
from mixmerge.core.records import Record
from mixmerge.generation import backend


def _prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def generate(
    model: str,
    model_dir: Path,
    records: Sequence[Record],
    settings: GenerationConfig,
    previous: Sequence[dict] = (),
    trust_remote_code: bool = False,
) -> tuple[list[dict], int]:
    """One row per record, in order, and how many were generated now (the rest reused)."""
    described = settings.model_dump()
    stamp = fingerprint(described, model_dir)[:16]
    known = {
        (row["id"], row["prompt_sha"]): row["text"]
        for row in previous
        if row.get("fingerprint") == stamp
    }
    keys = [(r.id, _prompt_hash(r.prompt)) for r in records]
    missing = [i for i, key in enumerate(keys) if key not in known]
    if missing:
        texts = backend(settings.backend)(
            model_dir, [records[i].prompt for i in missing], settings, trust_remote_code
        )
        known |= {keys[i]: text for i, text in zip(missing, texts, strict=True)}
    rows = [
        {
            "model": model,
            "id": r.id,
            "language": r.language,
            "objective": r.objective,
            "prompt_sha": key[1],
            "settings": described,
            "fingerprint": stamp,
            "text": known[key],
        }
        for r, key in zip(records, keys, strict=True)
    ]
    return rows, len(missing)


def generate_replicates(
    model: str,
    folders: Mapping[str | None, Path],
    records: Sequence[Record],
    settings: GenerationConfig,
    previous: Sequence[dict] = (),
    trust_remote_code: bool = False,
) -> tuple[list[dict], int]:
    """`generate` for each replicate (name: its folder), each row marked with its replicate
    (a replicate named None, a model judged alone, leaves its rows unmarked); the rows,
    replicate after replicate, and how many were generated now. A row of `previous` or of an
    earlier replicate is reused wherever its fingerprint matches: replicates with the same
    content (a base taken as it is, for every seed) are generated once."""
    rows, generated = [], 0
    for name, folder in folders.items():
        replicate_rows, count = generate(
            model, folder, records, settings, [*previous, *rows], trust_remote_code
        )
        rows += [row if name is None else row | {"replicate": name} for row in replicate_rows]
        generated += count
    return rows, generated
