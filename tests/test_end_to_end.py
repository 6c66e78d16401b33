"""The whole study through `dvc repro` on the smoke profile (the default study's shape at tiny
sizes), in a temporary copy of the repository: every stage, then the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_in
from tests.test_pipeline import stages_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(smoke_study) -> tuple[Path, str, float]:
    return smoke_study.root, smoke_study.output, smoke_study.seconds


def test_the_smoke_study_runs_every_stage_and_ends_in_the_report(smoke):
    root, output, seconds = smoke
    ran = stages_run(output)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for kind, table in (("sft", "sft"), ("dpo", "dpo"), ("merge", "merges")):
        for name in params[table]:
            assert f"{kind}@{name}" in ran and f"evaluate-{kind}@{name}" in ran
    assert {"prepare", "base", "evaluate-base", "report"} <= ran
    assert {f"search@{name}" for name in params["searches"]} <= ran
    assert {f"evaluate-chosen@{name}" for name in params["searches"]} <= ran
    print(f"smoke study: {len(ran)} stages in {seconds:.0f} s")


def test_the_smoke_search_scores_its_grid_on_dev(smoke):
    root, _, _ = smoke
    languages = yaml.safe_load((root / "params.yaml").read_text())["languages"]
    report = json.loads((root / "reports/searches/sft_linear.json").read_text())
    assert report["points"] == 4 and report["skipped"] == 0
    assert all(set(t["dev"]["per_language"]) == set(languages) for t in report["trials"])
    assert all(t["dev"]["average"]["win_rate"] is not None for t in report["trials"])
    assert report["front"] and set(report["front"]) <= {0, 1, 2, 3}
    # Set against the mixtures it merges, scored on the same dev prompts.
    assert set(report["references"]) == {"sft/mix0", "sft/mix15", "sft/mix100"}
    assert report["chosen"]["knee"]["trial"] in report["front"]
    best = report["chosen"]["best"]
    bar = report["references"]["sft/mix15"]["average"][report["front_on"]]
    assert (best["dev"]["average"][report["front_on"]] <= bar) == best["clears_bar"]
    plot = json.loads((root / "reports/searches/sft_linear/trials.json").read_text())
    assert len(plot) == 4 + 3
    # The chosen points, merged for every seed and judged on eval like any merge.
    seeds = yaml.safe_load((root / "params.yaml").read_text())["seeds"]
    for point in ("best", "knee"):
        judged = json.loads((root / f"reports/eval/merge/sft_linear-{point}.json").read_text())
        assert judged["replicates"] == [f"seed-{s}" for s in seeds]


def test_the_report_holds_every_table_with_numbers_and_no_nan(smoke):
    root, _, _ = smoke
    report = (root / "reports" / "report.md").read_text()
    for section in (
        "What this run says about the paper's claims",
        "Table 1: mixing against merging, by objective",
        "Language-based merging against the multilingual mixture",
        "Where the merge sits",
        "Harm against general quality, every model",
        "Per language: harm change",
        "Per language: win rate",
        "Over-refusal on benign look-alikes",
        "Linear ablation over the weight of sft/mix100",
        "Search sft_linear: weights chosen on dev, judged on eval",
        "Table 1's rows with searched weights",
    ):
        assert re.search(rf"^## {re.escape(section)}", report, re.M), section
    assert not re.search(r"\bnan\b", report, re.IGNORECASE)
    table1 = report.split("## Table 1")[1].split("##")[0]
    rows = r"^\| (0 %|15 %|100 %|Linear|SLERP|TIES|DARE-TIES) \|"
    assert len(re.findall(rows, table1, re.M)) == 7
    for figure in re.findall(r"\]\((figures/[^)]+)\)", report):
        assert (root / "reports" / figure).stat().st_size > 1000, figure
    search = report.split("## Search sft_linear")[1].split("\n## ")[0]
    chosen = r"^\| (best|knee)[^|]*\| `merge/sft_linear-(best|knee)`"
    assert len(re.findall(chosen, search, re.M)) == 2
    summary = json.loads((root / "reports" / "summary.json").read_text())
    assert summary["claims_tested"] == 4
    # The Linear claim, again on the weights the search chose.
    assert list(summary["searched_claims"]) == [next(iter(summary["claims"]))]
    assert set(summary["searches"]["sft_linear"]) == {"best", "knee"}
    linear = summary["objective"]["Linear sft"]
    assert set(linear) == {
        "harm_change", "win_rate", "harm_change_vs_baseline", "win_rate_vs_baseline"
    }  # fmt: skip
    # Like the paper's, the smoke base answers harmful requests, so every harm change is defined.
    base = json.loads((root / "reports" / "eval" / "base.json").read_text())["average"]
    assert base["harmful_rate"] > 0
    for row in summary["objective"].values():
        assert all(isinstance(value, (int, float)) for value in row.values()), row


def test_changing_one_merge_weight_reruns_only_that_merge_its_evaluation_and_the_report(smoke):
    root, _, _ = smoke
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["merges"]["sft_linear"]["models"][1]["weight"] = 0.6
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output = run_in(["dvc", "repro"], root)
    assert stages_run(output) == {"merge@sft_linear", "evaluate-merge@sft_linear", "report"}
    assert "Data and pipelines are up to date" in run_in(["dvc", "repro"], root)
