"""The pretraining corpus: plain text, in every language, that states the facts the tasks ask.

Every sum, difference and comparison of the arithmetic and comparison tasks is stated in every
language, in the sentence that answers it there ("3 plus 4 font 7."). The base reads them before
its warm-up, which answers those tasks in one language only: what general fine-tuning teaches
is to answer in the language of the question, with text the model has read.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from mixmerge.world import general
from mixmerge.world.packs import PACKS

SENTENCES_PER_PARAGRAPH = 8
STATED_FAMILIES = ("arithmetic", "comparison")


def facts(language: str) -> list[str]:
    pack = PACKS[language]
    tasks = [t for family in STATED_FAMILIES for t in general.family_tasks(family, language)]
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
