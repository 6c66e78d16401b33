"""Data mixtures with a set safety share: how many examples of each kind, and which ones.

Counts are rounded so that the realised safety share is as close to the requested one as whole
examples allow, per language and overall. Examples are drawn without replacement: asking for
more than exist is an error, never silent up-sampling.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

from mixmerge.core.errors import StageError
from mixmerge.core.records import Record

MAX_SHARE_ERROR = 0.01  # realised shares stay within one percentage point of the request


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` into integers proportional to `weights`, summing exactly to `total`."""
    exact = [total * w / sum(weights) for w in weights] if sum(weights) else [0.0] * len(weights)
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def allocate(
    languages: Sequence[str],
    safety_share: float,
    size_per_language: int | None = None,
    size_total: int | None = None,
) -> dict[str, dict[str, int]]:
    """Examples per language and objective (`safety`, `general`).

    The mixture's safety count is rounded once, from the total, then split across languages in
    proportion to their sizes: the overall share is off by at most half an example, each
    language's by less than one.
    """
    if size_per_language is not None:
        sizes = [size_per_language] * len(languages)
    else:
        sizes = _largest_remainder(size_total, [1.0] * len(languages))
    safety = _largest_remainder(_round_half_up(safety_share * sum(sizes)), sizes)
    pairs = zip(languages, sizes, safety, strict=True)
    return {code: {"safety": s, "general": n - s} for code, n, s in pairs}


def realised_share(counts: Mapping[str, Mapping[str, int]]) -> float:
    total = sum(sum(c.values()) for c in counts.values())
    return sum(c["safety"] for c in counts.values()) / total if total else 0.0


def check_share(requested: float, counts: Mapping[str, Mapping[str, int]]) -> None:
    realised = realised_share(counts)
    if abs(realised - requested) > MAX_SHARE_ERROR + 1e-9:
        total = sum(sum(c.values()) for c in counts.values())
        raise StageError(
            f"with {total} examples the realised safety share would be {realised:.3f}, "
            f"more than one point from the requested {requested}; use a larger size"
        )


def share_problem(
    safety: float,
    languages: Sequence[str],
    size_per_language: int | None,
    size_total: int | None,
) -> str | None:
    """Why a mixture of these sizes cannot hold its safety share, or None (params validation
    asks this before any data exists)."""
    counts = allocate(languages, safety, size_per_language, size_total)
    try:
        check_share(safety, counts)
    except StageError as error:
        return str(error)
    return None


def select(
    pool: Sequence[Record], counts: Mapping[str, Mapping[str, int]], seed: int
) -> list[Record]:
    """Draw `counts[language][objective]` records from `pool`, then shuffle them together.

    The draw per language and objective depends only on the seed and on which records exist,
    not on file order. All shortages are reported at once.
    """
    groups: dict[tuple[str, str], list[Record]] = {}
    for record in sorted(pool, key=lambda r: r.id):
        groups.setdefault((record.language, record.objective), []).append(record)
    chosen, shortages = [], []
    for language, per_objective in counts.items():
        for objective, wanted in per_objective.items():
            have = groups.get((language, objective), [])
            if wanted > len(have):
                shortages.append(f"{wanted} {objective} in {language} (there are {len(have)})")
                continue
            rng = random.Random(f"{seed}:{language}:{objective}")
            chosen.extend(rng.sample(have, wanted))
    if shortages:
        raise StageError("asks for more examples than there are: " + "; ".join(shortages))
    random.Random(f"{seed}:order").shuffle(chosen)
    return chosen
