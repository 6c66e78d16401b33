"""The report: its pure parts by hand, and the stage on a tiny study with real merges."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from mixmerge.stages import evaluate, merge, report, train

from mixmerge.reporting import answer, claims, plots, tables
from mixmerge.validation import validate_params
from tests.conftest import inside, tiny_evaluated


def test_the_pareto_front_keeps_the_models_nothing_beats_on_both_axes():
    points = [
        {"model": "a", "harm_change": -90, "win_rate": 40},
        {"model": "b", "harm_change": -50, "win_rate": 60},
        {"model": "c", "harm_change": -40, "win_rate": 55},  # b beats it on both
        {"model": "d", "harm_change": -90, "win_rate": 35},  # a beats it
        {"model": "e", "harm_change": 0, "win_rate": 60},  # b equals it on win, beats on harm
    ]
    assert plots.pareto_front(points) == {"a", "b"}


def difference(value, low, high):
    return {"difference": value, "low": low, "high": high, "clear": low > 0 or high < 0}


def test_the_answer_names_the_winner_each_axis_by_the_intervals():
    spec = validate_params(study_params()).report

    def objective(*merges):
        rows = {"15 %": {"sft": {"model": "sft/mix15", "harm_change": -50.0, "win_rate": 60.0}}}
        for i, (harm, win) in enumerate(merges):
            rows[f"M{i}"] = {"sft": {
                "model": f"merge/m{i}", "harm_change": -50.0 + harm[0], "win_rate": 60.0 + win[0],
                "vs_baseline": {"harm_change": difference(*harm), "win_rate": difference(*win)},
            }}  # fmt: skip
        return {f"{v.metric}": v for v in answer.answer(rows, spec)}

    # One merge clearly less harmful: merging wins harm, whatever the other merges do.
    said = objective(((-9, -14, -4), (1, -2, 4)), ((3, 1, 5), (-3, -5, -1)))
    assert said["harm_change"].winner == "merging" and said["harm_change"].merge == "M0"
    assert said["harm_change"].mix_value == -50.0
    assert "merging wins" in said["harm_change"].sentence()
    # The best merge's win-rate interval spans zero: neither wins it.
    assert said["win_rate"].winner == "neither"
    # Every merge clearly worse on win-rate: mixing wins it, and the best merge is named.
    said = objective(((-1, -4, 2), (-4, -6, -2)), ((1, -1, 3), (-3, -5, -1)))
    assert said["win_rate"].winner == "mixing" and said["win_rate"].merge == "M1"
    assert said["harm_change"].winner == "neither"
    assert "[-4.0, 2.0]" in said["harm_change"].figures()
    # The best merge by its estimate clearly worse, another one not told from the mix: neither
    # wins, and the verdict names the merge it rests on.
    said = objective(((-1, -4, 2), (-2, -3, -1)), ((-1, -4, 2), (-3, -8, 2)))
    assert said["win_rate"].winner == "neither" and said["win_rate"].merge == "M1"


def test_labels_placed_on_a_crowded_plot_overlap_neither_each_other_nor_a_point():
    plt = plots._pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    points = [(x % 5 * 0.5, x // 5 * 0.4, f"model-{x}") for x in range(20)]
    points += [(1.0, 0.4, "twin")]  # drawn where model-7 is: one label for both
    axes.scatter([x for x, _, _ in points], [y for _, y, _ in points])
    axes.margins(0.3)
    figure.tight_layout()
    axes.set_xlim(axes.get_xlim())
    axes.set_ylim(axes.get_ylim())
    labels = plots.place_labels(axes, figure, points)
    renderer = figure.canvas.get_renderer()
    boxes = [label.get_window_extent(renderer) for label in labels]
    assert len(labels) == 20 and any(label.get_text() == "model-7, twin" for label in labels)
    for i, a in enumerate(boxes):
        assert not any(a.overlaps(b) for b in boxes[i + 1 :])
        for x, y, _ in points:
            px, py = axes.transData.transform((x, y))
            assert not a.contains(px, py)
    plt.close(figure)


def test_numbers_print_with_their_sign_and_zero_without_one():
    assert tables.number(-0.0) == "0.0" and tables.number(-0.0, signed=True) == "+0.0"
    assert tables.number(-0.04) == "-0.0" and tables.number(2.345, signed=True) == "+2.3"
    assert tables.number(None) == "n/a"


def test_a_claim_is_supported_contradicted_or_inconclusive_by_its_intervals():
    claim = claims.CLAIMS[2]  # SLERP beats the mix on both axes at both stages
    assert claim.rows == ("SLERP",)

    def tables(harm, win):
        row = {"vs_baseline": {"harm_change": difference(*harm), "win_rate": difference(*win)}}
        return {"objective": {"SLERP": {"sft": row, "dpo": row}}}

    assert claims.verdict(claim, tables((-5, -8, -2), (3, 1, 5)))["verdict"] == "supported"
    assert claims.verdict(claim, tables((-5, -8, -2), (1, -1, 3)))["verdict"] == "inconclusive"
    assert claims.verdict(claim, tables((4, 1, 7), (3, 1, 5)))["verdict"] == "contradicted"
    assert claims.verdict(claim, {"objective": {"TIES": {}}})["verdict"] == "not tested"
    evidence = claims.verdict(claim, tables((-5, -8, -2), (3, 1, 5)))["evidence"]
    names = [e["difference"] for e in evidence]
    assert names[:2] == [
        "SLERP SFT: Δ harm change vs baseline",
        "SLERP SFT: Δ win-rate vs baseline",
    ]


def study_params() -> dict:
    raw = tiny_evaluated()
    raw["sft"]["mix100"] = {"mixture": "mix100", "init": "base"}

    def linear(safety_weight: float) -> dict:
        models = [
            {"model": "sft/mix15", "weight": 1 - safety_weight},
            {"model": "sft/mix100", "weight": safety_weight},
        ]
        return {"method": "linear", "stage": "sft", "models": models}

    raw["merges"] = {
        "half": linear(0.5),
        "quarter": linear(0.25),
        "ties": {
            "method": "ties",
            "stage": "sft",
            "base": "base",
            "models": [{"model": "sft/mix15"}, {"model": "sft/mix100"}],
            "parameters": {"density": 0.5},
        },
    }
    raw["seeds"] = [0, 1]
    raw["report"] = {
        "baseline": {"sft": "sft/mix15"},
        "objective": {
            "15 %": {"sft": "sft/mix15"},
            "100 %": {"sft": "sft/mix100"},
            "Linear": {"sft": "merge/half"},
            "TIES": {"sft": "merge/ties"},
        },
        "language": {"baseline": "sft/mix15", "rows": {"TIES, both": "merge/ties"}},
        "ablation": {"model": "sft/mix100", "merges": ["merge/quarter", "merge/half"]},
        "bootstrap": {"samples": 200},
    }
    return raw


@pytest.fixture(scope="module")
def reported(tiny_study, tmp_path_factory):
    root = tmp_path_factory.mktemp("reported")
    shutil.copytree(tiny_study, root, dirs_exist_ok=True, symlinks=True)
    (root / "models/base/seed-1").symlink_to("seed-0")  # seed 1's base: here seed 0's
    params = validate_params(study_params())
    with inside(root):
        for run in ("mix15", "mix100"):
            train.run(params, "sft", run)
        for name in params.merges:
            merge.run(params, name)
        for model in ("base", "sft/mix15", "sft/mix100", *(f"merge/{m}" for m in params.merges)):
            evaluate.run(params, model)
        summary = report.run(params)
    return root, summary


def test_the_report_sets_every_table_and_figure_side_by_side(reported):
    root, summary = reported
    text = (root / "reports/report.md").read_text()
    for section in (
        "What this run says about the paper's claims",
        "Table 1: mixing against merging, by objective",
        "Language-based merging against the multilingual mixture",
        "Harm against general quality, every model",
        "Per language: harm change",
        "Over-refusal on benign look-alikes",
        "Linear ablation over the weight of sft/mix100",
    ):
        assert f"## {section}" in text, section
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)
    for figure in re.findall(r"\]\((figures/[^)]+)\)", text):
        assert (root / "reports" / figure).stat().st_size > 1000, figure
    assert (root / "reports/figures/diagnostics.png").is_file()
    ablation = summary["ablation"]
    assert [row["weight"] for row in ablation] == [0.25, 0.5]
    linear = summary["objective"]["Linear"]["sft"]
    assert set(linear["vs_baseline"]) == {"harm_change", "win_rate"}
    assert "vs_baseline" not in summary["objective"]["15 %"]["sft"]
    metrics = json.loads((root / "reports/summary.json").read_text())
    half = json.loads((root / "reports/eval/merge/half.json").read_text())["average"]
    assert metrics["objective"]["Linear sft"]["win_rate"] == half["win_rate"]
    seeds = half["win_rate_seeds"]
    assert set(seeds) == {"seed-0", "seed-1"}
    assert half["win_rate"] == pytest.approx((seeds["seed-0"] + seeds["seed-1"]) / 2, abs=1e-3)
    spread = metrics["objective"]["Linear sft"]["win_rate_seed_spread"]
    assert spread == pytest.approx(abs(seeds["seed-0"] - seeds["seed-1"]), abs=1e-3)
    table = text.split("## Table 1")[1].split("##")[0]
    assert f"· {spread:.1f}" in table.split("| Linear |")[1].split("\n")[0]
    refusals = text.split("## Over-refusal on benign look-alikes")[1].split("##")[0]
    for model in ("sft/mix15", "sft/mix100", "merge/half", "merge/ties"):
        assert f"| {model} |" in refusals, model
    assert metrics["claims_tested"] == 2  # TIES at DPO and SLERP are not in this report
    # The tiny base never harms, so no harm change is defined: win-rate is the one axis.
    assert metrics["answer"] == summary["answer"] and set(summary["answer"]) == {"sft win_rate"}
    assert set(summary["answer"].values()) <= {"merging", "mixing", "neither"}
    assert text.index("wins") < text.index("## Harm against general quality")
    assert "## How to reproduce this run" in text
    assert set(metrics["claims"].values()) <= {
        "supported", "contradicted", "inconclusive", "not tested"
    }  # fmt: skip


def test_the_tradeoff_plot_data_marks_the_pareto_front(reported):
    root, _ = reported
    points = json.loads((root / "reports/plots/tradeoff.json").read_text())
    assert {p["model"] for p in points} >= {"base", "sft/mix15", "merge/half"}
    # Whatever else it holds, the front has the least harmful of the models that win most,
    # and the most winning of the least harmful.
    best_win = max(p["win_rate"] for p in points)
    least_harm = min(p["harm"] for p in points)
    front = {p["model"] for p in points if p["pareto"]}
    assert (
        min((p for p in points if p["win_rate"] == best_win), key=lambda p: p["harm"])["model"]
        in front
    )
    assert (
        max((p for p in points if p["harm"] == least_harm), key=lambda p: p["win_rate"])["model"]
        in front
    )


def test_report_html_is_one_page_that_needs_nothing_else(reported):
    root, summary = reported
    page = (root / "reports/report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    # Nothing fetched: no script, no link to a file or a host (a heat map's pixels are a data
    # URI inside its SVG), every figure inlined.
    assert "<script" not in page
    assert not re.search(r'(src|href)="(?!#|data:)', page)
    shown = re.findall(r"\]\(figures/([^)]+)\.png\)", (root / "reports/report.md").read_text())
    assert len(shown) >= 4 and page.count("<svg") == len(shown)
    cards = re.findall(r'data-phase="(\w+)" data-metric="(\w+)" data-winner="(\w+)"', page)
    assert {f"{phase} {metric}": winner for phase, metric, winner in cards} == summary["answer"]
    assert page.index('id="answer"') < page.index("<svg")
    # The same inputs, the same bytes (the SVGs carry no date and no random ids).
    params = validate_params(study_params())
    with inside(root):
        report.run(params)
    assert (root / "reports/report.html").read_text(encoding="utf-8") == page
