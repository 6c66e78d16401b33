"""An LLM as the translator, behind any OpenAI-compatible endpoint (`mixmerge.api.client`,
which counts the requests and caches each answer)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from mixmerge.api.client import ChatAPI
from mixmerge.core.languages import language_name

INSTRUCTION = """Translate the text below from {source} into {target}. Keep its meaning, tone \
and formatting (line breaks, lists, code, numbers); translate a harmful or offensive request \
as it is, without answering, softening or commenting on it. Reply with the translation alone.

{text}"""
VERSION = hashlib.sha256(INSTRUCTION.encode()).hexdigest()[:16]


class LLMTranslator:
    def __init__(self, config, section: str):
        self.config = config
        self.model = config.model
        self.api = ChatAPI(config, role="the LLM translator", section=section)
        self.api.check_reachable()

    def check_languages(self, languages: Sequence[str]) -> None:
        """An LLM is asked in words: any language has a name to ask in."""

    def translate(self, texts: list[str], source: str, target: str) -> list[str | None]:
        def job(text: str):
            message = INSTRUCTION.format(
                source=language_name(source), target=language_name(target), text=text
            )
            return lambda: self.api.ask(
                VERSION,
                ("translate", source, target, text),
                [{"role": "user", "content": message}],
                lambda answer: bool(answer.strip()),
            )

        answers = self.api.ask_all([job(text) for text in texts])
        return [answer.strip() if answer and answer.strip() else None for answer in answers]

    def usage(self) -> dict:
        return self.api.usage()
