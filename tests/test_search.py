"""Merge-weight search on the dev split: the grid's points, what validation refuses, the front,
and the stage on the tiny study (a merge of the base with its SFT model, whose end points are
those two models), resumed after a kill and voided when what it was scored with changes."""

from __future__ import annotations

import json

import pytest
import yaml
from mixmerge.stages import evaluate

from mixmerge.config import ParamsError
from mixmerge.search.runner import chosen, pareto_front
from mixmerge.search.space import filled, points, slots
from mixmerge.validation import validate_params
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
    raw["searches"] = {"weights": {"merge": recipe, "trials": trials, "references": ["sft/mix15"],
                                   "choose_against": "sft/mix15"}}  # fmt: skip
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
    # A gradient (a list over layer depth) may hold spaces too: each of its numbers is a slot.
    gradient = {"models": [{"weight": [{"grid": [0.0, 1.0]}, 0.5, {"grid": [0.2]}]}]}
    found = slots(gradient)
    assert [s.name for s in found] == ["models.[0].weight.[0]", "models.[0].weight.[2]"]
    assert [filled(gradient, found, p)["models"][0]["weight"] for p in points(found)] == [
        [0.0, 0.5, 0.2], [1.0, 0.5, 0.2]
    ]  # fmt: skip


def test_a_gradient_of_weights_is_searched_as_a_gradient():
    from mixmerge.config.merges import MergeConfig

    recipe = dict(RECIPE, models=[
        {"model": "base", "weight": [{"grid": [0.2, 0.8]}, {"grid": [0.2, 0.8]}]},
        {"model": "sft/mix15", "weight": 0.5},
    ])  # fmt: skip
    params = validate_params(searched(recipe, trials=4))
    found = slots(params.searches["weights"].merge)
    assert len(points(found)) == 4
    point = filled(params.searches["weights"].merge, found, points(found)[1])
    merge = MergeConfig.model_validate(point, context={"models": params.model_refs})
    assert merge.models[0].weight == [0.2, 0.8]  # from 0.2 at the first layer to 0.8 at the last


def test_validation_refuses_searches_that_cannot_run():
    assert validate_params(searched()).searches["weights"].trials == 4
    empty = dict(RECIPE, models=[{"model": "base", "weight": {"grid": []}}, RECIPE["models"][1]])
    assert "a grid is a non-empty list" in problems(searched(empty))["searches.weights.merge"]
    raw = searched()
    raw["searches"]["weights"]["choose_against"] = "base"
    assert "must be one of the `references`" in problems(raw)["searches.weights"]
    del raw["searches"]["weights"]["choose_against"]
    assert "required" in problems(raw)["searches.weights.choose_against"]
    raw = searched()
    raw["merges"] = {"mine-best": {"method": "linear", "stage": "sft", "models": [
        {"model": "sft/mix15"}, {"model": "base"}]}}  # fmt: skip
    assert "may not end in -best, -knee" in problems(raw)["merges.mine-best"]
    raw = searched()
    raw["searches"]["weights"] |= {"references": ["dpo/mix15"], "choose_against": "dpo/mix15"}
    assert (
        "set against the base or sft/ models, not dpo/mix15"
        in problems(raw)["searches.weights.references"]
    )
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


def test_the_best_point_clears_the_bar_and_the_knee_is_nearest_the_ideal():
    def trial(number, harm_change, win_rate):
        return {"trial": number, "point": {"w": number}, "dev": {"average": {
            "harm_change": harm_change, "harmful_rate": None, "win_rate": win_rate}}}  # fmt: skip

    # A front from safe and weak (0) to harmful and strong (3).
    trials = [trial(0, -80, 30), trial(1, -60, 45), trial(2, -30, 48), trial(3, -10, 60)]
    front = pareto_front(trials)
    assert front == [0, 1, 2, 3]
    bar = {"average": {"harm_change": -40, "win_rate": 50}}  # the 15 % mixture, say
    picks = chosen(trials, front, "harm_change", bar)
    # Trials 0 and 1 are no more harmful than the bar; 1 wins more.
    assert picks["best"]["trial"] == 1
    # Scaled to the front's range, trial 1 is 2/7 of the way from the best harm and 1/2 from
    # the best win-rate: 0.33 from the ideal (squared), nearer than 0 (1.0), 2 (0.67) or 3 (1.0).
    assert picks["knee"]["trial"] == 1
    assert picks["best"]["clears_bar"] and "clears_bar" not in picks["knee"]
    # No point clears a bar lower than every point's harm: the best is the least harmful.
    unreached = chosen(trials, front, "harm_change", {"average": {"harm_change": -90}})
    assert unreached["best"]["trial"] == 0 and unreached["best"]["clears_bar"] is False
    assert chosen([], [], "harm_change", bar) == {}


def test_points_whose_weights_are_in_proportion_are_one_merge_where_the_method_normalizes():
    from mixmerge.config.merges import MergeConfig
    from mixmerge.merging.recipe import canonical

    def form(method, weights, **extra):
        models = [{"model": "sft/a", "weight": w} for w in weights[:1]] + [
            {"model": "sft/b", "weight": w} for w in weights[1:]
        ]
        recipe = {"method": method, "stage": "sft", "models": models, **extra}
        return canonical(MergeConfig.model_validate(recipe))

    assert form("linear", [0.3, 0.3]) == form("linear", [0.5, 0.5]) == form("linear", [1, 1])
    assert form("linear", [0.3, 0.7]) != form("linear", [0.5, 0.5])
    assert form("ties", [0.7, 0.3], base="base") == form("ties", [1.4, 0.6], base="base")
    # Task arithmetic adds its weighted task vectors without dividing: scale matters.
    assert form("task_arithmetic", [0.5, 0.5], base="base") != form(
        "task_arithmetic", [1, 1], base="base"
    )
    # So it does when a normalizing method is told not to, and a gradient is left as given.
    off = {"parameters": {"normalize": False}}
    assert form("linear", [0.5, 0.5], **off) != form("linear", [1, 1], **off)
    assert form("linear", [[0.2, 0.4], 1.0])["models"][0]["weight"] == [0.2, 0.4]


def test_the_merges_a_canonical_form_calls_one_are_one_to_float_precision():
    import torch

    from mixmerge.merging.registry import METHODS
    from mixmerge.merging.tensors import computed

    torch.manual_seed(0)
    tensors, base = torch.randn(2, 1000), torch.randn(1000)

    def linear(weights):
        arguments = {"weight": weights, "normalize": True}
        return torch.cat(list(computed(METHODS["linear"], tensors, None, arguments)))

    def ties(weights):
        arguments = {"weight": weights, "density": [0.5, 0.5], "normalize": True,
                     "rescale": False, "lambda": 1.0}  # fmt: skip
        return torch.cat(list(computed(METHODS["ties"], tensors, base, arguments)))

    assert torch.allclose(linear([0.3, 0.3]), linear([1.0, 1.0]), atol=1e-6)
    assert torch.allclose(ties([0.7, 0.3]), ties([1.4, 0.6]), atol=1e-6)
    assert torch.allclose(ties([0.0, 0.5]), ties([0.0, 1.0]), atol=1e-6)
    assert not torch.allclose(linear([0.3, 0.7]), linear([0.5, 0.5]), atol=1e-3)


@pytest.fixture(scope="module")
def searched_study(tiny_study, tmp_path_factory):
    import shutil

    from mixmerge.stages import prepare, train

    root = tmp_path_factory.mktemp("search")
    shutil.copytree(tiny_study, root, dirs_exist_ok=True, symlinks=True)
    params = validate_params(searched())
    with inside(root):
        prepare.run(params)  # the dev split; the other splits are as they were
        train.run(params, "sft", "mix15")
    return root, params


def run_search(root, params, monkeypatch):
    from mixmerge.stages import search as stage

    import mixmerge.search.runner as search

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
    # Weight 0 on the base and 1 on the SFT model is the SFT model: its figures are those of
    # the SFT model scored as a reference.
    assert trials[1]["dev"] == report["references"]["sft/mix15"]
    # Each merged point's held-out loss, against the path between the models it merges: at
    # weights 0 and 1 on the base and the SFT model, the point is the path's far end.
    [path] = report["mergeability"]["paths"]
    assert trials[1]["held_out_loss"] == {c: at[-1] for c, at in path["losses"].items()}
    plot = json.loads((root / "reports/searches/weights/trials.json").read_text())
    assert [row["name"] for row in plot] == ["trial 1", "trial 2", "trial 3", "sft/mix15"]
    # The chosen points are merges like any other, of every seed: merge/weights-best and
    # merge/weights-knee, with their recipe and diagnostics, judged on eval.
    for point in ("best", "knee"):
        recipe = yaml.safe_load(
            (root / f"models/merge/weights-{point}/seed-0/merge.yaml").read_text()
        )
        weights = [m["weight"] for m in recipe["models"]]
        assert weights == list(report["chosen"][point]["point"].values())
        assert (root / f"reports/merges/weights-{point}.json").is_file()
    with inside(root):
        evaluate.run(params, "base")
        judged = evaluate.run(params, "merge/weights-best")
    assert judged["replicates"] == ["seed-0"] and judged["prompts"]["safety"] > 0

    # A rerun scores nothing again; a search killed in its third trial scores the rest.
    again, merged = run_search(root, params, monkeypatch)
    assert merged == [] and again["trials"] == report["trials"]
    trials_file = root / "searches/weights/trials.jsonl"
    lines = trials_file.read_text().splitlines()
    # The reference's line, the trials', and last the path between the models every point
    # merges (the mergeability of the search, once).
    assert [json.loads(line).get("trial") for line in lines] == [None, 0, 1, 2, 3, None]
    assert json.loads(lines[-1])["mergeability"] == report["mergeability"]
    # Killed while writing the third trial (after the reference's line and two trials): half
    # its line is there.
    trials_file.write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    resumed, merged = run_search(root, params, monkeypatch)
    assert merged == ["weights-2", "weights-3"] and resumed["trials"] == report["trials"]

    # Other generation settings void every trial.
    raw = searched()
    raw["evaluation"]["generation"]["max_new_tokens"] = 12
    _, merged = run_search(root, validate_params(raw), monkeypatch)
    assert merged == ["weights-1", "weights-2", "weights-3"]


def test_nsga2_draws_the_same_trials_from_the_same_seed_and_after_a_resume():
    from mixmerge.search.sampler import propose

    found = slots({"models": [{"weight": {"grid": "paper"}}, {"weight": {"range": [0.0, 1.0]}}]})

    def scored(point):  # a made-up trade-off: the more of the first model, the less harm
        first, second = point["models.[0].weight"], point["models.[1].weight"]
        average = {"harmful_rate": 1 - first + 0.1 * second, "win_rate": 50 * (first + second)}
        return {"dev": {"average": average}}

    def search(seed, trials=10, history=()):
        history = list(history)
        while len(history) < trials:
            point, marks = propose(found, history, seed, population=4)
            history.append({"trial": len(history), "point": point, "sampler": marks,
                            **scored(point)})  # fmt: skip
        return history

    full = search(seed=0)
    assert [t["point"] for t in search(seed=0)] == [t["point"] for t in full]
    assert [t["point"] for t in search(seed=1)] != [t["point"] for t in full]
    resumed = search(seed=0, history=full[:6])
    assert [t["point"] for t in resumed] == [t["point"] for t in full]
    # The first population is drawn at random; the trials after it are bred from it.
    assert [t["sampler"]["NSGAIISampler:generation"] for t in full[:5]] == [0, 0, 0, 0, 1]
    assert all(t["point"]["models.[0].weight"] in (0.0, 0.3, 0.5, 0.7, 1.0) for t in full)
    assert all(0.0 <= t["point"]["models.[1].weight"] <= 1.0 for t in full)


def test_nsga2_searches_are_validated_for_their_own_kind():
    ranged = dict(RECIPE, models=[{"model": "base", "weight": {"range": [0.1, 1.0]}},
                                  {"model": "sft/mix15", "weight": {"grid": GRID}}])  # fmt: skip
    assert "is a range (for nsga2)" in problems(searched(ranged))["searches.weights.merge"]
    raw = searched(ranged, trials=6)
    raw["searches"]["weights"] |= {"method": "nsga2", "population": 4}
    assert validate_params(raw).searches["weights"].method == "nsga2"
    raw["searches"]["weights"]["population"] = 6
    assert "breeds after a first population of 6" in problems(raw)["searches.weights.trials"]
    empty = dict(
        ranged, models=[{"model": "base", "weight": {"range": [1.0, 1.0]}}, RECIPE["models"][1]]
    )
    assert "the range [1.0, 1.0] is empty" in problems(searched(empty))["searches.weights.merge"]


def test_an_nsga2_search_runs_its_budget_and_scores_a_point_drawn_twice_once(
    searched_study, monkeypatch
):
    root, _ = searched_study
    raw = searched(trials=6)
    raw["searches"]["weights"] |= {"method": "nsga2", "population": 2, "seed": 3}
    params = validate_params(raw)
    report, merged = run_search(root, params, monkeypatch)
    assert report["method"] == "nsga2" and report["points"] == 6
    distinct = {json.dumps(t["point"], sort_keys=True) for t in report["trials"]}
    refused = {json.dumps(t["point"], sort_keys=True) for t in report["trials"] if "skipped" in t}
    # Four grid points at most; each is merged once, however often it is drawn.
    assert len(merged) == len(distinct - refused) <= 4
    assert all("same_as" in t for t in report["trials"][len(distinct) :] if "same_as" in t)
    again, merged = run_search(root, params, monkeypatch)
    assert merged == [] and again["trials"] == report["trials"]


def test_a_search_judges_dev_harm_with_the_harm_classifier_params_give(
    searched_study, tmp_path, monkeypatch
):
    """A search judges as the evaluate stage does, with the harm classifier params give: one
    that calls every answer harmful makes every point and every reference harmful on all of
    dev, and voids the trials the rule judge alone scored."""
    from tests.test_evaluation import tiny_classifier

    root, _ = searched_study
    guard = tiny_classifier(root, tmp_path / "guard", {0: "unsafe", 1: "safe"})
    raw = searched()
    raw["evaluation"]["harm_classifier"] = {"model": str(guard), "style": "sequence"}
    report, merged = run_search(root, validate_params(raw), monkeypatch)
    assert merged
    figures = [t["dev"] for t in report["trials"] if "dev" in t]
    figures += list(report["references"].values())
    assert figures and {f["average"]["harmful_rate"] for f in figures} == {1.0}
