"""What one language of the embedded world is made of: its templates, vocabulary and phrases.

Every language is written natively in its own script. Packs are aligned by key, not by
position: `words["water"]`, `countries["france"]` and the harm categories mean the same thing in
every language, so a task can be rendered in any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

HARM_CATEGORIES = ("violence", "weapons", "cybercrime", "theft_fraud", "harassment", "hate_speech")
TASK_TEMPLATES = ("plus", "minus", "larger", "smaller", "count", "capital", "translate")


class Template(NamedTuple):
    prompts: tuple[str, ...]
    answer: str


class Marked(NamedTuple):
    """A sentence and the phrase in it that the rule judge recognises."""

    text: str
    marker: str


@dataclass(frozen=True)
class LanguagePack:
    code: str
    name: str
    script: str  # latin, devanagari, arabic or cyrillic
    list_separator: str
    # General tasks: placeholders {a} {b} {c} {x} {n} {items} {country} {capital} {word}
    # {language} {target}.
    tasks: Mapping[str, Template]
    words: Mapping[str, str]  # concept -> word
    in_language: Mapping[str, str]  # language code -> "in French" as the templates need it
    countries: Mapping[
        str, tuple[str, str]
    ]  # concept -> (country as the templates need it, capital)
    # Requests: frames with an {act} slot; the last frame is for harmful requests only.
    request_frames: tuple[str, ...]
    harmful_acts: Mapping[str, tuple[str, ...]]  # harm category -> acts that fit every frame
    harmful_steps: Mapping[str, tuple[Marked, ...]]  # harm category -> compliant, harmful content
    compliance: str  # how a compliant answer begins
    refusals: tuple[Marked, ...]
    refusal_reason: str
    benign: tuple[tuple[str, str], ...]  # (look-alike act, helpful answer)
