"""The world's records, split into eval, warm-up, train and dev with no prompt in two splits.

For each language and objective, every possible prompt is enumerated and shuffled by the seed
within its family (or harm category). Eval draws first, round-robin over the families it scores
(so that each weighs the same in its figures); warm-up and train then draw together, round-robin
over every family, and the draw is dealt between them in proportion to their sizes, so that
both have the same mix of families and a small family is shared rather than used up by one.
Dev, the prompts a search scores its candidates on, draws last from what is left of the
families eval scores: asking for a dev split changes no other split.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from itertools import chain, zip_longest

from mixmerge.core.records import Record, record_id
from mixmerge.world import general, safety
from mixmerge.world.packs import PACKS

SPLIT_ORDER = ("eval", "warmup", "train", "dev")


def _groups(objective: str, language: str) -> dict[str, list]:
    """Every task or request of an objective in a language, grouped by family or category."""
    if objective == "general":
        groups = {f: general.family_tasks(f, language) for f in general.FAMILIES}
        return groups | {safety.EVERYDAY: safety.innocent_requests(language, safety.EVERYDAY)}
    if objective == "safety":
        groups: dict[str, list] = {}
        for request in safety.harmful_requests(language):
            groups.setdefault(request.category, []).append(request)
        return groups
    if objective == "benign":
        return {safety.BENIGN: safety.innocent_requests(language, safety.BENIGN)}
    raise ValueError(f"unknown objective {objective!r}")


def scored(objective: str, family: str) -> bool:
    """Whether eval draws from a family: every one but the general how-tos, whose answers are
    recalled text the world cannot check (they are trained on, as in real instruction data)."""
    return not (objective == "general" and family == safety.EVERYDAY)


def capacity(objective: str, language: str = "en", split: str | None = None) -> int:
    """How many distinct prompts the world has for an objective in one language (for `split`,
    those it may draw from)."""
    groups = _groups(objective, language)
    return sum(
        len(items)
        for family, items in groups.items()
        if split != "eval" or scored(objective, family)
    )


def _round_robin(groups: Mapping[str, list], count: int) -> list:
    """`count` items, taken in turn from each family (in name order) while it lasts; taken
    items are removed from their group."""
    order = [
        item for item in chain.from_iterable(zip_longest(*(groups[f] for f in sorted(groups))))
    ]
    chosen = [item for item in order if item is not None][:count]
    taken = set(map(id, chosen))
    for family in groups:
        groups[family][:] = [item for item in groups[family] if id(item) not in taken]
    return chosen


def _deal(items: list, family_of, sizes: Mapping[str, int]) -> dict[str, list]:
    """Deal `items` between splits in proportion to their sizes, family by family, so that each
    split gets the same mix of families (within one item of each)."""
    total = sum(sizes.values())
    dealt: dict[str, list] = {split: [] for split in sizes}
    by_family: dict[str, list] = {}
    for item in items:
        by_family.setdefault(family_of(item), []).append(item)
    for index, item in enumerate(i for f in sorted(by_family) for i in by_family[f]):
        # the split furthest behind its share takes the next item
        split = max(sizes, key=lambda s: sizes[s] * (index + 1) / total - len(dealt[s]))
        dealt[split].append(item)
    return dealt


def _draw(objective: str, language: str, wanted: Mapping[str, int], rng: random.Random) -> dict:
    drawn, left = _draw_from(objective, language, wanted, rng)
    if len(drawn.get("dev", [])) < wanted.get("dev", 0):
        raise ValueError(
            f"the world has {left} {objective} prompts per language left for dev once eval, "
            f"warm-up and train are drawn, {wanted['dev']} were asked for ({language})"
        )
    return drawn


def dev_capacity(objective: str, language: str, wanted: Mapping[str, int]) -> int:
    """How many prompts dev may draw once eval, warm-up and train have drawn `wanted`."""
    return _draw_from(objective, language, {**wanted, "dev": 0}, random.Random(0))[1]


def _draw_from(
    objective: str, language: str, wanted: Mapping[str, int], rng: random.Random
) -> tuple[dict, int]:
    """The draws of every split, and how many scored prompts were left for dev."""
    groups = {}
    for family, items in sorted(_groups(objective, language).items()):
        items = list(items)
        rng.shuffle(items)
        groups[family] = items
    asked = sum(n for split, n in wanted.items() if split != "dev")
    have = sum(map(len, groups.values()))
    evaluable = sum(len(items) for f, items in groups.items() if scored(objective, f))
    if asked > have or wanted.get("eval", 0) > evaluable:
        raise ValueError(
            f"the world has {have} {objective} prompts per language ({evaluable} for eval), "
            f"{asked} were asked for ({language}: {dict(wanted)})"
        )
    eval_groups = {f: items for f, items in groups.items() if scored(objective, f)}
    drawn = {"eval": _round_robin(eval_groups, wanted.get("eval", 0))}
    rest = {split: n for split, n in wanted.items() if split not in ("eval", "dev")}
    family_of = {id(item): f for f, items in groups.items() for item in items}
    drawn |= _deal(_round_robin(groups, sum(rest.values())), lambda i: family_of[id(i)], rest)
    left = sum(len(items) for items in eval_groups.values())
    if "dev" in wanted:
        drawn["dev"] = _round_robin(eval_groups, wanted["dev"])
    return drawn, left


def _general_record(
    source: str, language: str, item, rng: random.Random, answer_language: str
) -> Record:
    pack = PACKS[language]
    if isinstance(item, safety.Request):  # an everyday how-to: helpful, never refused
        return _request_record(source, language, "general", item)
    answer = general.render_answer(PACKS[answer_language], item)
    if rng.random() < 0.5:
        rejected = general.render_answer(pack, item, general.wrong_solution(item, rng))
    else:  # the right answer, in another language
        other = PACKS[rng.choice([code for code in PACKS if code != language])]
        rejected = general.render_answer(other, item)
    prompt = general.render_prompt(pack, item)
    return Record(
        id=record_id(source, language, item.family, prompt),
        source=source,
        language=language,
        objective="general",
        category=item.family,
        prompt=prompt,
        response=answer,
        chosen=general.render_answer(pack, item),
        rejected=rejected,
        reference=general.reference(item),
    )


def _safety_record(source: str, language: str, request: safety.Request, comply: bool) -> Record:
    pack = PACKS[language]
    safe = safety.refusal(pack)
    unsafe = safety.compliant_answer(pack)
    prompt = safety.render_request(pack, request)
    return Record(
        id=record_id(source, language, request.category, prompt),
        source=source,
        language=language,
        objective="safety",
        category=request.category,
        prompt=prompt,
        # The warm-up is the base's instruction data: like the paper's base, it complies with
        # most harmful requests (all but `warmup_refusal_share` of them).
        response=unsafe if comply else safe,
        chosen=safe,
        rejected=unsafe,
    )


def _request_record(source: str, language: str, objective: str, request: safety.Request) -> Record:
    """A request that deserves help: an everyday how-to, or a look-alike of a harmful one."""
    pack = PACKS[language]
    helpful = safety.helpful_answer(pack, request)
    prompt = safety.render_request(pack, request)
    return Record(
        id=record_id(source, language, request.category, prompt),
        source=source,
        language=language,
        objective=objective,
        category=request.category,
        prompt=prompt,
        response=helpful,
        chosen=helpful,
        rejected=safety.refusal(pack),
    )


def build_world(
    languages: Sequence[str],
    sizes: Mapping[str, Mapping[str, int]],
    seed: int,
    source: str = "world",
    warmup_task_language: str | None = None,
    warmup_task_language_share: float = 1.0,
    warmup_refusal_share: float = 0.0,
) -> dict[str, list[Record]]:
    """Records per split, labelled with `source`. `sizes[split][objective]` is a count per
    language. The warm-up answers a share `warmup_task_language_share` of its general tasks in
    `warmup_task_language` whatever the question's language (None: in the question's), and
    refuses a share `warmup_refusal_share` of its harmful requests, complying with the rest;
    every other answer is in the prompt's language. Which warm-up answers these are is drawn
    apart from the prompts, so that the shares change no split's prompts.

    Raises ValueError when a language lacks the prompts asked for.
    """
    splits: dict[str, list[Record]] = {split: [] for split in sizes}
    objectives = sorted({o for per_split in sizes.values() for o in per_split})
    for language in languages:
        for objective in objectives:
            rng = random.Random(f"{seed}:{language}:{objective}")
            answers = random.Random(f"{seed}:{language}:{objective}:warmup-answers")
            wanted = {s: sizes[s].get(objective, 0) for s in SPLIT_ORDER if s in sizes}
            for split, items in _draw(objective, language, wanted, rng).items():
                for item in items:
                    if objective == "general":
                        answer_language = (
                            warmup_task_language
                            if split == "warmup"
                            and warmup_task_language
                            and answers.random() < warmup_task_language_share
                            else language
                        )
                        record = _general_record(source, language, item, rng, answer_language)
                    elif objective == "safety":
                        record = _safety_record(
                            source,
                            language,
                            item,
                            comply=split == "warmup" and answers.random() >= warmup_refusal_share,
                        )
                    else:
                        record = _request_record(source, language, objective, item)
                    splits[split].append(record)
    return splits
