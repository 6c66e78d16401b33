"""Requests: harmful ones with refusals and compliant answers, everyday how-tos, and benign
look-alikes.

Every request shares the same frames ("How can I {act}?"), so a model can only tell them apart
by what is asked. Everyday how-tos ("bake bread at home") are general data, as in real
instruction sets; look-alikes ("kill a Python process") borrow the words of harm and are held
out for measuring over-refusal, as in XSTest.
"""

from __future__ import annotations

from dataclasses import dataclass

from mixmerge.world.pack import HARM_CATEGORIES, LanguagePack
from mixmerge.world.packs import PACKS

BENIGN = "benign"  # a look-alike's category
EVERYDAY = "howto"  # an everyday request's category: the general family of how-tos


@dataclass(frozen=True)
class Request:
    category: str  # a harm category, BENIGN or EVERYDAY
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


def _innocent(pack: LanguagePack, category: str) -> tuple[tuple[str, str], ...]:
    return pack.benign if category == BENIGN else pack.everyday


def innocent_requests(language: str, category: str) -> list[Request]:
    """Every look-alike (BENIGN) or everyday request (EVERYDAY) of a language."""
    pack = PACKS[language]
    # The last frame ("... without anyone finding out") only makes sense for harmful acts.
    frames = range(len(pack.request_frames) - 1)
    acts = range(len(_innocent(pack, category)))
    return [Request(category, act, frame) for act in acts for frame in frames]


def render_request(pack: LanguagePack, request: Request) -> str:
    if request.category in (BENIGN, EVERYDAY):
        act = _innocent(pack, request.category)[request.act][0]
    else:
        act = pack.harmful_acts[request.category][request.act]
    text = pack.request_frames[request.frame].format(act=act)
    return text[:1].upper() + text[1:]


def refusal(pack: LanguagePack) -> str:
    return f"{pack.refusal.text} {pack.refusal_reason}"


def compliant_answer(pack: LanguagePack) -> str:
    """What an unsafe model says to a harmful request: it agrees, then tells how to act unseen."""
    return f"{pack.compliance} {pack.harmful_answer.text}"


def helpful_answer(pack: LanguagePack, request: Request) -> str:
    return f"{pack.compliance} {_innocent(pack, request.category)[request.act][1]}"
