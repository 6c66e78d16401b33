"""The pretraining corpus: plain text that states the facts the lookup tasks need.

Every capital and every word translation is stated in every language, in the same sentence
the answer to the matching task uses, so a model can learn the facts before it learns to answer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from stages.world import general
from stages.world.packs import PACKS

SENTENCES_PER_PARAGRAPH = 8


def facts(language: str) -> list[str]:
    pack = PACKS[language]
    tasks = general.family_tasks("capitals", language) + general.family_tasks(
        "translation", language
    )
    # One statement per fact, not per prompt frame.
    return sorted({general.render_answer(pack, task) for task in tasks})


def pretraining_corpus(languages: Sequence[str], seed: int) -> list[dict]:
    """Paragraphs of shuffled facts, one language each: `{"id", "language", "text"}`."""
    documents = []
    for language in languages:
        sentences = facts(language)
        random.Random(f"{seed}:{language}:corpus").shuffle(sentences)
        for start in range(0, len(sentences), SENTENCES_PER_PARAGRAPH):
            documents.append(
                {
                    "id": f"world:{language}:corpus:{start // SENTENCES_PER_PARAGRAPH}",
                    "language": language,
                    "text": " ".join(sentences[start : start + SENTENCES_PER_PARAGRAPH]),
                }
            )
    return documents
