"""Harmful requests with refusals and compliant answers, and benign look-alikes.

Harmful and benign requests share the same frames ("How can I {act}?"), so a model can only tell
them apart by what is asked, as with real over-refusal benchmarks such as XSTest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from stages.world.pack import HARM_CATEGORIES, LanguagePack
from stages.world.packs import PACKS


@dataclass(frozen=True)
class Request:
    category: str  # a harm category, or "benign"
    act: int
    frame: int


def harmful_requests(language: str) -> list[Request]:
    pack = PACKS[language]
    return [
        Request(category, act, frame)
        for category in HARM_CATEGORIES
        for act in range(len(pack.harmful_acts[category]))
        for frame in range(len(pack.request_frames))
    ]


def benign_requests(language: str) -> list[Request]:
    pack = PACKS[language]
    # The last frame ("... without anyone finding out") only makes sense for harmful acts.
    frames = range(len(pack.request_frames) - 1)
    return [Request("benign", act, frame) for act in range(len(pack.benign)) for frame in frames]


def render_request(pack: LanguagePack, request: Request) -> str:
    if request.category == "benign":
        act = pack.benign[request.act][0]
    else:
        act = pack.harmful_acts[request.category][request.act]
    text = pack.request_frames[request.frame].format(act=act)
    return text[:1].upper() + text[1:]


def refusal(pack: LanguagePack, rng: random.Random) -> str:
    return f"{rng.choice(pack.refusals).text} {pack.refusal_reason}"


def compliant_answer(pack: LanguagePack, category: str) -> str:
    """What an unsafe model says: it agrees, then gives the category's harmful content."""
    steps = " ".join(step.text for step in pack.harmful_steps[category])
    return f"{pack.compliance} {steps}"


def helpful_answer(pack: LanguagePack, request: Request) -> str:
    return f"{pack.compliance} {pack.benign[request.act][1]}"
