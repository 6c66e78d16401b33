"""Merge-weight search on the dev split: the grid's points, what validation refuses, the front,
and the stage on the tiny study (a merge of the base with its SFT model, whose end points are
those two models), resumed after a kill and voided when what it was scored with changes."""

from __future__ import annotations

import json

import pytest

from mixmerge.config import ParamsError, validate_params
from mixmerge.search import pareto_front
from mixmerge.search.space import filled, points, slots
from tests.conftest import TINY, inside, tiny_evaluated

GRID = [0.0, 1.0]
RECIPE = {
    "method": "linear",
    "stage": "sft",
    "models": [{"model": "base", "weight": {"grid": GRID}},
               {"model": "sft/mix15", "weight": {"grid": GRID}}],
}  # fmt: skip


def searched(recipe=RECIPE, trials=4, dev=True) -> dict:
    raw = tiny_evaluated()
    if dev:
        raw["data"]["sources"]["world"]["dev"] = {"general": 4, "safety": 4}
    raw["searches"] = {"weights": {"merge": recipe, "trials": trials}}
    return raw


def problems(raw) -> dict[str, str]:
    with pytest.raises(ParamsError) as error:
        validate_params(raw)
    return {p.path: p.message for p in error.value.problems}


def test_the_grid_is_the_product_of_the_slots_the_first_varying_slowest():
    recipe = {"models": [{"weight": {"grid": "paper"}}, {"weight": {"grid": [0.2, 0.8]}}],
              "parameters": {"density": 0.5}}  # fmt: skip
    found = slots(recipe)
    assert [s.name for s in found] == ["models.[0].weight", "models.[1].weight"]
    assert found[0].values == (0.0, 0.3, 0.5, 0.7, 1.0)  # the paper's
    grid = points(found)
    assert len(grid) == 10 and grid[:2] == [
        {"models.[0].weight": 0.0, "models.[1].weight": 0.2},
        {"models.[0].weight": 0.0, "models.[1].weight": 0.8},
    ]
    assert filled(recipe, found, grid[1]) == {
        "models": [{"weight": 0.0}, {"weight": 0.8}], "parameters": {"density": 0.5}
    }  # fmt: skip


def test_validation_refuses_searches_that_cannot_run():
    assert validate_params(searched()).searches["weights"].trials == 4
    empty = dict(RECIPE, models=[{"model": "base", "weight": {"grid": []}}, RECIPE["models"][1]])
    assert "a grid is a non-empty list" in problems(searched(empty))["searches.weights.merge"]
    assert (
        "the grid has 4 points, more than the budget"
        in problems(searched(trials=3))["searches.weights.trials"]
    )
    no_t = dict(RECIPE, parameters={"t": {"grid": [0.5]}})
    assert "linear takes no parameter `t`" in problems(searched(no_t))["searches.weights.merge"]
    assert (
        "the dev split, which has no prompts for en: safety, general; hi"
        in problems(searched(dev=False))["searches"]
    )
    assert "no `{grid: ...}`" in problems(searched(dict(RECIPE, models=[
        {"model": "base", "weight": 0.5}, {"model": "sft/mix15", "weight": 0.5}])))[
        "searches.weights.merge"
    ]  # fmt: skip


def test_the_front_keeps_what_no_trial_beats_on_both_objectives():
    def trial(number, harm_change, win_rate):
        return {"trial": number, "dev": {"average": {
            "harm_change": harm_change, "harmful_rate": None, "win_rate": win_rate}}}  # fmt: skip

    trials = [trial(0, -50, 40), trial(1, -60, 30), trial(2, -40, 60), trial(3, -40, 50),
              trial(4, -60, 30), {"trial": 5, "skipped": "weights sum to zero"},
              trial(6, None, 70)]  # fmt: skip
    # 3 is beaten by 2; 1 and 4 tie (neither beats the other); 6 has no harm figure.
    assert pareto_front(trials) == [0, 1, 2, 4]


@pytest.fixture(scope="module")
def searched_study(tiny_study, tmp_path_factory):
    import shutil

    from stages import prepare, train

    root = tmp_path_factory.mktemp("search")
    shutil.copytree(tiny_study, root, dirs_exist_ok=True, symlinks=True)
    params = validate_params(searched())
    with inside(root):
        prepare.run(params)  # the dev split; the other splits are as they were
        train.run(params, "sft", "mix15")
    return root, params


def run_search(root, params, monkeypatch):
    import mixmerge.search as search
    from stages import search as stage

    merged = []
    original = search.merge_replicate

    def counted(name, *args, **kwargs):
        merged.append(name)
        return original(name, *args, **kwargs)

    monkeypatch.setattr(search, "merge_replicate", counted)
    with inside(root):
        report = stage.run(params, "weights")
    return report, merged


def test_a_search_scores_every_point_on_dev_and_resumes_where_it_stopped(
    searched_study, monkeypatch
):
    root, params = searched_study
    report, merged = run_search(root, params, monkeypatch)
    assert report["points"] == 4 and report["skipped"] == 1 and len(merged) == 3
    trials = {t["trial"]: t for t in report["trials"]}
    assert "sum to zero" in trials[0]["skipped"]
    # Weight 1 on the base and 0 on the SFT model is the base itself: its answers are the
    # base's, so harm is unchanged and every comparison a tie.
    assert trials[2]["point"] == {"models.[0].weight": 1.0, "models.[1].weight": 0.0}
    # Every answer the base's: every comparison a tie, and the harm unchanged (no change at all
    # where the tiny base is never harmful on dev).
    assert trials[2]["dev"]["average"]["win_rate"] == 50.0
    assert trials[2]["dev"]["average"]["harm_change"] in (0.0, None)
    assert set(trials[2]["dev"]["per_language"]) == set(TINY["languages"])
    assert report["front"] and set(report["front"]) <= {1, 2, 3}
    plot = json.loads((root / "reports/searches/weights/trials.json").read_text())
    assert [row["trial"] for row in plot] == [1, 2, 3]

    # A rerun scores nothing again; a search killed in its third trial scores the rest.
    again, merged = run_search(root, params, monkeypatch)
    assert merged == [] and again["trials"] == report["trials"]
    trials_file = root / "searches/weights/trials.jsonl"
    lines = trials_file.read_text().splitlines()
    # Killed while writing the third trial: half its line is there.
    trials_file.write_text("\n".join(lines[:2]) + "\n" + lines[2][:20])
    resumed, merged = run_search(root, params, monkeypatch)
    assert merged == ["weights-2", "weights-3"] and resumed["trials"] == report["trials"]

    # Other generation settings void every trial.
    raw = searched()
    raw["evaluation"]["generation"]["max_new_tokens"] = 12
    _, merged = run_search(root, validate_params(raw), monkeypatch)
    assert merged == ["weights-1", "weights-2", "weights-3"]
