"""NSGA-II (Deb et al., 2002, "A fast and elitist multiobjective genetic algorithm") through
Optuna's NSGAIISampler, one draw at a time and reproducibly.

Each draw makes a fresh study holding the trials before it (their points, dev figures and the
sampler's own marks, such as their generation) and a sampler seeded by the search's seed and
the trial's number; the draw therefore depends on nothing but those, and a search killed after
trial k draws trial k + 1 as an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Sequence

from mixmerge.search.space import Slot


def _distributions(found: Sequence[Slot]) -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    return {
        slot.name: CategoricalDistribution(list(slot.values))
        if slot.values is not None
        else FloatDistribution(slot.low, slot.high)
        for slot in found
    }


def objectives(trial: dict) -> list[float] | None:
    """What NSGA-II minimises for a scored trial: its dev harmful rate and minus its win-rate
    (the harmful rate is defined where its change is not, against a base never harmful)."""
    average = (trial.get("dev") or {}).get("average") or {}
    harm, win = average.get("harmful_rate"), average.get("win_rate")
    return None if harm is None or win is None else [harm, -win]


def propose(
    found: Sequence[Slot], history: Sequence[dict], seed: int, population: int
) -> tuple[dict[str, float], dict]:
    """The next point after `history` (trial rows, in order), and the sampler's marks on it."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = _distributions(found)
    number = len(history)
    sampler = optuna.samplers.NSGAIISampler(
        seed=(seed * 1_000_003 + number) % 2**32, population_size=population
    )
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    for trial in history:
        values = objectives(trial)
        study.add_trial(
            create_trial(
                params=trial["point"],
                distributions=distributions,
                values=values,
                state=TrialState.COMPLETE if values else TrialState.FAIL,
                system_attrs=trial.get("sampler", {}),
            )
        )
    asked = study.ask(distributions)
    return dict(asked.params), dict(study.trials[-1].system_attrs)
