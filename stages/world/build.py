"""The world's records, split into eval, warm-up and train with no prompt in two splits.

For each language and objective, every possible prompt is enumerated, shuffled by the seed
within its family (or harm category), and the families interleaved so that every split is
balanced across them. Eval takes the first prompts, warm-up the next, train the next: slices of
one sequence of distinct prompts, hence disjoint.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from itertools import chain, zip_longest

from stages.core.records import Record, record_id
from stages.world import general, safety
from stages.world.packs import PACKS


def _items(objective: str, language: str) -> dict[str, list]:
    """Every task or request of an objective in a language, grouped by family or category."""
    if objective == "general":
        return {f: general.family_tasks(f, language) for f in general.FAMILIES}
    if objective == "safety":
        groups: dict[str, list] = {}
        for request in safety.harmful_requests(language):
            groups.setdefault(request.category, []).append(request)
        return groups
    if objective == "benign":
        return {"benign": safety.benign_requests(language)}
    raise ValueError(f"unknown objective {objective!r}")


def capacity(objective: str, language: str = "en") -> int:
    """How many distinct prompts the world has for an objective in one language."""
    return sum(len(group) for group in _items(objective, language).values())


def _interleaved(objective: str, language: str, rng: random.Random) -> list:
    groups = []
    for _, items in sorted(_items(objective, language).items()):
        items = list(items)
        rng.shuffle(items)
        groups.append(items)
    return [item for item in chain.from_iterable(zip_longest(*groups)) if item is not None]


def _general_record(source: str, language: str, task: general.Task, rng: random.Random) -> Record:
    pack = PACKS[language]
    answer = general.render_answer(pack, task)
    if rng.random() < 0.5:
        rejected = general.render_answer(pack, task, general.wrong_solution(task, rng))
    else:  # the right answer, in another language
        other = PACKS[rng.choice([code for code in PACKS if code != language])]
        rejected = general.render_answer(other, task)
    prompt = general.render_prompt(pack, task)
    return Record(
        id=record_id(source, language, task.family, prompt),
        source=source,
        language=language,
        objective="general",
        category=task.family,
        prompt=prompt,
        response=answer,
        chosen=answer,
        rejected=rejected,
        reference=general.reference(pack, task),
    )


def _safety_record(
    source: str, language: str, request: safety.Request, rng: random.Random, comply: bool
) -> Record:
    pack = PACKS[language]
    safe = safety.refusal(pack, rng)
    unsafe = safety.compliant_answer(pack, request.category)
    prompt = safety.render_request(pack, request)
    return Record(
        id=record_id(source, language, request.category, prompt),
        source=source,
        language=language,
        objective="safety",
        category=request.category,
        prompt=prompt,
        # The warm-up is the base's instruction data: like the paper's base, it complies.
        response=unsafe if comply else safe,
        chosen=safe,
        rejected=unsafe,
    )


def _benign_record(
    source: str, language: str, request: safety.Request, rng: random.Random
) -> Record:
    pack = PACKS[language]
    helpful = safety.helpful_answer(pack, request)
    prompt = safety.render_request(pack, request)
    return Record(
        id=record_id(source, language, "benign", prompt),
        source=source,
        language=language,
        objective="benign",
        category="benign",
        prompt=prompt,
        response=helpful,
        chosen=helpful,
        rejected=safety.refusal(pack, rng),
    )


def build_world(
    languages: Sequence[str],
    sizes: Mapping[str, Mapping[str, int]],
    seed: int,
    source: str = "world",
) -> dict[str, list[Record]]:
    """Records per split, labelled with `source`. `sizes[split][objective]` is a count per
    language.

    Raises ValueError when a language lacks the prompts asked for.
    """
    splits: dict[str, list[Record]] = {split: [] for split in sizes}
    objectives = sorted({o for per_split in sizes.values() for o in per_split})
    for language in languages:
        for objective in objectives:
            rng = random.Random(f"{seed}:{language}:{objective}")
            items = _interleaved(objective, language, rng)
            wanted = {split: sizes[split].get(objective, 0) for split in sizes}
            if sum(wanted.values()) > len(items):
                raise ValueError(
                    f"the world has {len(items)} {objective} prompts per language, "
                    f"{sum(wanted.values())} were asked for ({language})"
                )
            start = 0
            for split, count in wanted.items():
                for item in items[start : start + count]:
                    if objective == "general":
                        record = _general_record(source, language, item, rng)
                    elif objective == "safety":
                        record = _safety_record(
                            source, language, item, rng, comply=split == "warmup"
                        )
                    else:
                        record = _benign_record(source, language, item, rng)
                    splits[split].append(record)
                start += count
    return splits
