"""Judge one model's responses: harm on harmful prompts, refusal on benign look-alikes, the
comparison with the base on general prompts, and exact correctness where the world can check."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from mixmerge.core.errors import StageError
from mixmerge.core.records import Record
from mixmerge.evaluation.metrics import Verdicts
from mixmerge.judging.items import Judge, Pair, Response
from mixmerge.judging.rule import correct

HarmJudge = Callable[[list[Response]], list[bool | None]]


def judge_responses(
    judge: Judge,
    records: Sequence[Record],
    texts: Sequence[str],
    base_texts: Sequence[str],
    harm_judge: HarmJudge | None = None,
) -> list[dict]:
    """One judgment row per record, in order. `harm_judge` (a classifier) replaces the
    judge's harm verdicts when given."""
    rows = [
        {"id": r.id, "language": r.language, "objective": r.objective, "category": r.category}
        for r in records
    ]

    def at(objective: str) -> list[int]:
        return [i for i, r in enumerate(records) if r.objective == objective]

    def response(i: int) -> Response:
        r = records[i]
        return Response(r.id, r.language, r.prompt, texts[i], r.category, r.reference)

    harmful = [response(i) for i in at("safety")]
    for i, verdict in zip(at("safety"), (harm_judge or judge.harmful)(harmful), strict=True):
        rows[i]["harmful"] = verdict
    benign = [response(i) for i in at("benign")]
    for i, verdict in zip(at("benign"), judge.refused(benign), strict=True):
        rows[i]["refused"] = verdict
    pairs = [Pair(**vars(response(i)), base=base_texts[i]) for i in at("general")]
    for i, pair, comparison in zip(at("general"), pairs, judge.compare(pairs), strict=True):
        rows[i]["score"] = comparison.score
        rows[i]["verdicts"] = list(comparison.verdicts)
        rows[i]["correct"] = correct(pair, pair.text)
    return rows


def base_texts(
    generations: Sequence[dict], records: Sequence[Record], replicates: Sequence[str | None]
) -> dict[str | None, list[str]]:
    """The base's response to each record, in the records' order, for each replicate (the
    base of each seed), from its `generations`."""
    found = {(row.get("replicate"), row["id"]): row["text"] for row in generations}
    for name in replicates:
        missing = [r.id for r in records if (name, r.id) not in found]
        if missing:
            raise StageError(
                f"the base's {name} has no response to {len(missing)} eval prompts (first: "
                f"{missing[0]}): run `dvc repro evaluate-base` again"
            )
    return {name: [found[name, r.id] for r in records] for name in replicates}


def judge_replicates(
    judge: Judge,
    records: Sequence[Record],
    generations: Sequence[dict],
    replicates: Sequence[str | None],
    base_texts: Mapping[str | None, Sequence[str]],
    harm_judge: HarmJudge | None = None,
) -> list[dict]:
    """`judge_responses` for each replicate's rows of `generations`, against the same seed's
    base (`base_texts` by replicate), each judgment marked with its replicate (unmarked for a
    replicate named None, a model judged alone)."""
    judged = []
    for name in replicates:
        texts = [row["text"] for row in generations if row.get("replicate") == name]
        rows = judge_responses(judge, records, texts, base_texts[name], harm_judge)
        judged += [row if name is None else row | {"replicate": name} for row in rows]
    return judged


def _matrix(rows: Sequence[Sequence[dict]], key: str) -> np.ndarray:
    """Verdicts on `key`, a row per group of rows (one group per replicate)."""
    return np.array(
        [[np.nan if row[key] is None else float(row[key]) for row in group] for group in rows],
        dtype=float,
    )


def by_language(
    rows: Sequence[dict], base_rows: Sequence[dict], replicates: Sequence[str | None] = (None,)
) -> dict[str, Verdicts]:
    """Verdict arrays per language, a row per replicate (rows carry their `replicate`, in the
    order given; one replicate judged alone, with its base, may leave it out), a column per
    prompt in the order of the eval set; the harm verdicts of each replicate's base (the base's
    replicate of the same seed) are matched by prompt id."""
    by_replicate: dict = {r: [] for r in replicates}
    for row in rows:
        by_replicate[row.get("replicate")].append(row)
    base = {(row.get("replicate"), row["id"]): row for row in base_rows}
    first = by_replicate[replicates[0]]
    out = {}
    for language in sorted({row["language"] for row in first}):

        def of(objective: str, language: str = language) -> list[list[dict]]:
            """Each replicate's rows of one objective in this language, in eval-set order."""
            return [
                [
                    r
                    for r in by_replicate[replicate]
                    if r["language"] == language and r["objective"] == objective
                ]
                for replicate in replicates
            ]

        harmful, general = of("safety"), of("general")
        out[language] = Verdicts(
            harmful=_matrix(harmful, "harmful"),
            base_harmful=_matrix(
                [
                    [base[name, row["id"]] for row in group]
                    for name, group in zip(replicates, harmful, strict=True)
                ],
                "harmful",
            ),
            win=_matrix(general, "score"),
            refused=_matrix(of("benign"), "refused"),
            correct=_matrix(general, "correct"),
        )
    return out


def unknown_counts(rows: Sequence[dict]) -> dict[str, int]:
    """Verdicts the judge could not give, per question."""
    return {
        question: sum(1 for row in rows if key in row and row[key] is None)
        for question, key in (("harm", "harmful"), ("refusal", "refused"), ("comparison", "score"))
    }
