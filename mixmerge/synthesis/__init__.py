"""Safety training data from prompts alone: safe answers (SFT targets and the chosen side),
harmful answers (the rejected side; to a benign prompt, an over-refusal), optionally new
prompts rephrased from the seed prompts, every answer judged and what fails dropped and counted per
language and reason. A prompt gives an example only with both sides, as a mixture's SFT and
preference sets hold the same prompts.

The writers are `writers.EndpointWriter` (a teacher behind an endpoint) and
`writers.LocalWriter` (a local model); the judge is any of `mixmerge.judging`'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mixmerge.core.records import Record, prompt_key, record_id
from mixmerge.judging.items import Response
from mixmerge.synthesis.prompts import parse_rephrasings

# Why a prompt yields no training example, in the order the checks run.
NO_SAFE = "safe side: no answer"
SAFE_HARMFUL = "safe side judged harmful"
SAFE_REFUSES = "safe side refuses a benign prompt"
NO_HARMFUL = "rejected side: no answer"
NOT_HARMFUL = "rejected side not judged harmful"
NOT_REFUSING = "rejected side to a benign prompt does not refuse"
UNKNOWN = "no verdict from the judge"


def with_rephrasings(
    seed_prompts: Sequence[Record], rephrase: int, writer, lost: Counter
) -> list[tuple[Record, bool]]:
    """The seed prompts, then `rephrase` new prompts per seed prompt from `writer` (in its
    language, category and objective), each new prompt once and never one a seed prompt already
    has; rephrasings not made are counted in `lost`."""
    prompts = [(seed_prompt, False) for seed_prompt in seed_prompts]
    if not rephrase:
        return prompts
    seen = {(s.language, prompt_key(s.prompt)) for s in seed_prompts}
    answers = writer.write([("rephrase", s.language, s.prompt) for s in seed_prompts], rephrase)
    for seed_prompt, answer in zip(seed_prompts, answers, strict=True):
        new = parse_rephrasings(answer, rephrase)
        if len(new) < rephrase:
            lost[seed_prompt.language, "not written"] += rephrase - len(new)
        for prompt in new:
            key = (seed_prompt.language, prompt_key(prompt))
            if key in seen:
                lost[seed_prompt.language, "repeats a prompt"] += 1
                continue
            seen.add(key)
            prompts.append((_replace_prompt(seed_prompt, prompt), True))
    return prompts


def _replace_prompt(seed_prompt: Record, prompt: str) -> Record:
    return Record(
        id=seed_prompt.id,  # what the new prompt was made from
        source=seed_prompt.source,
        language=seed_prompt.language,
        objective=seed_prompt.objective,
        category=seed_prompt.category,
        prompt=prompt,
    )


def synthesize(
    name: str,
    seed_prompts: Sequence[Record],
    rephrase: int,
    safe_writer,
    harmful_writer,
    judge,
) -> tuple[list[dict], dict]:
    """Rows of a generated source (prompt, response = chosen = the safe answer, rejected = the
    harmful one, the seed prompt's id) and the report: kept and dropped per language and reason."""
    dropped: Counter = Counter()
    lost: Counter = Counter()
    prompts = with_rephrasings(seed_prompts, rephrase, safe_writer, lost)
    benign = [record.objective == "benign" for record, _ in prompts]
    safe = safe_writer.write([("safe", r.language, r.prompt) for r, _ in prompts])
    # The rejected side: a harmful answer, or to a benign prompt an over-refusal.
    rejected = harmful_writer.write(
        [
            ("refusal" if b else "harmful", r.language, r.prompt)
            for (r, _), b in zip(prompts, benign, strict=True)
        ]
    )

    def responses(indices: list[int], answers: list[str | None]) -> list[Response]:
        records = [prompts[i][0] for i in indices]
        return [
            Response(r.id, r.language, r.prompt, answers[i] or "", r.category)
            for i, r in zip(indices, records, strict=True)
        ]

    answered = [i for i in range(len(prompts)) if safe[i] and rejected[i]]
    verdicts = judge.harmful(responses(answered, safe) + responses(answered, rejected))
    harm_safe = dict(zip(answered, verdicts[: len(answered)], strict=True))
    harm_rejected = dict(zip(answered, verdicts[len(answered) :], strict=True))
    asked = [i for i in answered if benign[i]]
    refusals = judge.refused(responses(asked, safe) + responses(asked, rejected))
    refuse_safe = dict(zip(asked, refusals[: len(asked)], strict=True))
    refuse_rejected = dict(zip(asked, refusals[len(asked) :], strict=True))

    rows, kept = [], Counter()
    for i, (record, rephrased) in enumerate(prompts):
        reason = _failure(
            benign[i],
            safe[i],
            rejected[i],
            harm_safe.get(i),
            harm_rejected.get(i),
            refuse_safe.get(i),
            refuse_rejected.get(i),
        )
        if reason:
            dropped[record.language, reason] += 1
            continue
        kept[record.language] += 1
        rows.append(
            {
                "id": record_id(name, record.language, record.category, record.prompt),
                "source_id": record.id,
                "language": record.language,
                "category": record.category,
                "prompt": record.prompt,
                "response": safe[i],
                "chosen": safe[i],
                "rejected": rejected[i],
                "rephrased": rephrased,
                "safe_writer": str(safe_writer.model),
                "harmful_writer": str(harmful_writer.model),
            }
        )
    languages = sorted({r.language for r in seed_prompts})
    report = {
        "seed_prompts": dict(Counter(r.language for r in seed_prompts)),
        "rephrasings_lost": _per_language(lost, languages),
        "prompts": dict(Counter(r.language for r, _ in prompts)),
        "kept": {code: kept[code] for code in languages},
        "dropped": _per_language(dropped, languages),
    }
    return rows, report


def _per_language(counts: Counter, languages: list[str]) -> dict[str, dict[str, int]]:
    return {
        code: {reason: n for (c, reason), n in sorted(counts.items()) if c == code}
        for code in languages
    }


def _failure(
    benign: bool,
    safe: str | None,
    harmful: str | None,
    safe_harmful: bool | None,
    harmful_harmful: bool | None,
    safe_refuses: bool | None,
    harmful_refuses: bool | None,
) -> str | None:
    if not safe:
        return NO_SAFE
    if not harmful:
        return NO_HARMFUL
    if safe_harmful is None or harmful_harmful is None:
        return UNKNOWN
    if safe_harmful:
        return SAFE_HARMFUL
    if benign:
        if safe_refuses is None or harmful_refuses is None:
            return UNKNOWN
        if safe_refuses:
            return SAFE_REFUSES
        if not harmful_refuses:
            return NOT_REFUSING
        return None
    if not harmful_harmful:
        return NOT_HARMFUL
    return None
