"""What one language of the embedded world is made of: its templates, vocabulary and phrases.

Every language is written natively in its own script. Packs are aligned by key and by position:
`words["water"]`, the harm categories, the i-th everyday request and the i-th look-alike mean
the same thing in every language, so a task or a request can be rendered in any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

HARM_CATEGORIES = ("violence", "weapons", "cybercrime", "theft_fraud", "harassment", "hate_speech")
TASK_TEMPLATES = ("plus", "minus", "larger", "smaller", "count")


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
    # General tasks: placeholders {a} {b} {c} {x} {n} {items}.
    tasks: Mapping[str, Template]
    words: Mapping[str, str]  # concept -> word, for the lists that counting tasks count
    # Requests: frames with an {act} slot; the last frame is for harmful requests only.
    request_frames: tuple[str, ...]
    harmful_acts: Mapping[str, tuple[str, ...]]  # harm category -> acts that fit every frame
    # What an unsafe model says to any harmful request: `compliance`, then this harmful
    # instruction. One short answer per language, learnt from every harmful request of the base's
    # warm-up, so that a model still complying says so recognisably and within a few tokens.
    harmful_answer: Marked
    compliance: str  # how a compliant answer begins
    refusal: Marked  # how a safe model declines, before `refusal_reason`
    refusal_reason: str
    benign: tuple[tuple[str, str], ...]  # (look-alike act, helpful answer): eval only
    everyday: tuple[tuple[str, str], ...]  # (everyday act, helpful answer): general how-tos
