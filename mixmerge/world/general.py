"""General tasks with reference answers: arithmetic, comparison and counting.

A `Task` is language-independent, so the same task renders in any language: that is how a
preference pair gets its "right answer in the wrong language" side, and how the base's warm-up
answers a question asked in one language in another (see `build`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from mixmerge.world.pack import LanguagePack
from mixmerge.world.packs import PACKS

# The scored task families: every answer is a number, checked exactly.
FAMILIES = ("arithmetic", "comparison", "counting")

# Sized for what a tiny model learns in minutes: single-digit operands, short lists.
ARITHMETIC_MAX = 9
COMPARISON_MAX = 9
COUNTING_TASKS = 600
COUNTING_LENGTHS = (2, 7)


@dataclass(frozen=True)
class Task:
    family: str
    template: str  # a key of LanguagePack.tasks
    frame: int  # which of the template's prompts
    values: tuple


def sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


@cache
def _counting_lists() -> tuple[tuple[str, ...], ...]:
    # Fixed, not seeded by params: the task space is part of the world, the seed only splits it.
    rng = random.Random("counting-lists")
    concepts = sorted(PACKS["en"].words)
    lists: dict[tuple[str, ...], None] = {}
    while len(lists) < COUNTING_TASKS:
        lists[tuple(rng.sample(concepts, rng.randint(*COUNTING_LENGTHS)))] = None
    return tuple(lists)


def family_tasks(family: str, language: str) -> list[Task]:
    """Every task of a family in a language, in a fixed order."""
    pack = PACKS[language]

    def with_frames(template: str, values_list) -> list[Task]:
        frames = range(len(pack.tasks[template].prompts))
        return [Task(family, template, f, v) for v in values_list for f in frames]

    numbers = range(ARITHMETIC_MAX + 1)
    if family == "arithmetic":
        return with_frames("plus", [(a, b) for a in numbers for b in numbers]) + with_frames(
            "minus", [(a, b) for a in numbers for b in numbers if b <= a]
        )
    if family == "comparison":
        pairs = [(a, b) for a in range(COMPARISON_MAX + 1) for b in range(COMPARISON_MAX + 1)]
        pairs = [p for p in pairs if p[0] != p[1]]
        return with_frames("larger", pairs) + with_frames("smaller", pairs)
    if family == "counting":
        return with_frames("count", [(items,) for items in _counting_lists()])
    raise ValueError(f"unknown task family {family!r}")


def solution(task: Task) -> int:
    """The language-independent right answer."""
    match task.template:
        case "plus":
            return task.values[0] + task.values[1]
        case "minus":
            return task.values[0] - task.values[1]
        case "larger":
            return max(task.values)
        case "smaller":
            return min(task.values)
        case "count":
            return len(task.values[0])
    raise ValueError(f"unknown template {task.template!r}")


def wrong_solution(task: Task, rng: random.Random) -> int:
    """A plausible wrong answer: off by a little, or the other number."""
    right = solution(task)
    match task.template:
        case "plus" | "minus" | "count":
            return rng.choice([right + d for d in (-2, -1, 1, 2) if right + d >= 0])
        case "larger" | "smaller":
            return next(v for v in task.values if v != right)
    raise ValueError(f"unknown template {task.template!r}")


def _fields(pack: LanguagePack, task: Task, answer: int) -> dict:
    match task.template:
        case "plus" | "minus":
            a, b = task.values
            return {"a": a, "b": b, "c": answer}
        case "larger" | "smaller":
            a, b = task.values
            return {"a": a, "b": b, "x": answer}
        case "count":
            items = pack.list_separator.join(pack.words[c] for c in task.values[0])
            return {"items": items, "n": answer}
    raise ValueError(f"unknown template {task.template!r}")


def render_prompt(pack: LanguagePack, task: Task) -> str:
    template = pack.tasks[task.template].prompts[task.frame]
    return sentence_case(template.format(**_fields(pack, task, solution(task))))


def render_answer(pack: LanguagePack, task: Task, answer: int | None = None) -> str:
    """The answer sentence in `pack`'s language, with the right answer unless another is given.

    The task's fields (a counting list's words among them) are rendered in `pack`'s language
    too: an answer in another language says all of it in that language."""
    answer = solution(task) if answer is None else answer
    return sentence_case(pack.tasks[task.template].answer.format(**_fields(pack, task, answer)))


def reference(task: Task) -> str:
    """What the checker looks for in a response: the right number."""
    return str(solution(task))
