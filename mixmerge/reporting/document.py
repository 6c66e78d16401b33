"""The study's report: the paper's tables on this run, side by side with the paper, with
intervals, figures and a verdict on each headline claim (reports/report.md, reports/summary.json,
reports/figures/ and reports/plots/).

`write_report` builds it in parts, each a section of report.md and its share of the summary:
Table 1 and the comparisons (`tables`), the per-language tables with their figures and plot
data, the trade-off of every model, the weight ablation, the merge diagnostics, whether each
merge's models can be merged at all (`mergeability`), a section per search (`searches`), and
the claims (`claims`), which read the summary the parts wrote: on Table 1, then on its rows
with searched weights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.config.report import ReportConfig
from mixmerge.core.errors import StageError
from mixmerge.core.io import atomic_path, remove, write_json
from mixmerge.reporting import claims, mergeability, plots, searches, tables
from mixmerge.reporting.results import Results

PAPER = """The paper's Table 1 (Aakanksha et al., 2024; as reported in secondary sources):
at SFT the 15 % mix has harm change −56.6 and win-rate 67.4, and the Linear merge reaches
win-rate 76.0; at DPO the TIES merge lowers harm 10.4 points more than the mix; SLERP beats
the mix on both axes at both stages; TIES over the six monolingual models reaches −63.2 / 71.2,
and over en, fr and es −65.3 / 77.0."""

Sections = list[tuple[str, str]]  # (title, Markdown) of report.md, in order


def write_report(params: StudyConfig, root: Path = paths.ROOT) -> dict:
    """Build the report from the evaluations under `root` and write its files; its summary."""
    summary, text = build(params, root)
    with atomic_path(root / paths.SUMMARY) as tmp:
        write_json(tmp, dvc_metrics(summary))
    with atomic_path(root / paths.REPORT) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return summary


def build(params: StudyConfig, root: Path = paths.ROOT) -> tuple[dict, str]:
    """Every table, claim and figure of the report: (summary, Markdown). Figures and plot data
    are written under `root` as they are drawn."""
    spec = params.report
    results = Results(root)
    figures, plot_data = root / paths.FIGURES, root / paths.PLOTS
    for folder in (figures, plot_data):  # nothing left from an earlier report
        remove(folder)
        folder.mkdir(parents=True)
    summary: dict = {}
    sections: Sections = []
    language_rows = comparison_tables(results, spec, summary, sections)
    per_language_tables(results, spec, language_rows, sections, figures, plot_data)
    front = tradeoff(results, summary, figures, plot_data)
    if spec.ablation:
        summary["ablation"], text = tables.ablation(results, ablation_weights(params))
        sections.append((f"Linear ablation over the weight of {spec.ablation.model}", text))
        plots.ablation(summary["ablation"], spec.ablation.model, figures / "ablation.png")
        write_json(plot_data / "ablation.json", summary["ablation"])
    diagnosed = merge_diagnostics(spec, root, figures)
    summary["mergeability"], text = mergeability.section(params, root)
    if text:
        sections.append(("Can the models be merged? The loss between them", text))
    for name in params.searches:
        summary.setdefault("searches", {})[name], text = searches.search_section(
            results, params, name, root, figures
        )
        sections.append((f"Search {name}: weights chosen on dev, judged on eval", text))

    verdicts = [claims.verdict(c, summary) for c in claims.CLAIMS]
    summary["claims"] = {v["claim"]: v["verdict"] for v in verdicts}
    tested = [v for v in verdicts if v["verdict"] != "not tested"]
    summary["claims_supported"] = sum(v["verdict"] == "supported" for v in tested)
    summary["claims_tested"] = len(tested)
    searched = []
    if spec.searched:
        summary["searched"], text = tables.objective(results, spec, spec.searched)
        sections.append(("Table 1's rows with searched weights", text))
        searched = [claims.verdict(c, {"objective": summary["searched"]}) for c in claims.CLAIMS]
        searched = [v for v in searched if v["verdict"] != "not tested"]
        summary["searched_claims"] = {v["claim"]: v["verdict"] for v in searched}
    return summary, render(params, sections, verdicts, front, diagnosed, searched)


def comparison_tables(
    results: Results, spec: ReportConfig, summary: dict, sections: Sections
) -> dict[str, str]:
    """Table 1, and the language-based and merge-order comparisons when params ask; the
    language comparison's rows (label: model), for the per-language tables."""
    summary["objective"], text = tables.objective(results, spec)
    sections.append(("Table 1: mixing against merging, by objective", text))
    language_rows = {}
    if spec.language:
        summary["language"], text = tables.comparison(results, spec.language, spec.bootstrap)
        sections.append(("Language-based merging against the multilingual mixture", text))
        language_rows = {"baseline": spec.language.baseline, **spec.language.rows}
    if spec.order:
        summary["order"], text = tables.comparison(results, spec.order, spec.bootstrap)
        sections.append(("Where the merge sits: SFT, DPO and the merge in three orders", text))
    return language_rows


def per_language_tables(
    results: Results,
    spec: ReportConfig,
    language_rows: dict[str, str],
    sections: Sections,
    figures: Path,
    plot_data: Path,
) -> None:
    """Harm change and win-rate per language for Table 1's rows by phase (and the language
    comparison's), with a figure and DVC plot data each; then over-refusal for every model."""
    panels = {
        phase.upper(): {
            label: getattr(row, phase)
            for label, row in spec.objective.items()
            if getattr(row, phase)
        }
        for phase in tables.PHASES
    }
    panels = {panel: rows for panel, rows in panels.items() if rows}
    if language_rows:
        panels["languages"] = language_rows
    by_language = {}
    for panel, rows in panels.items():
        for metric in ("harm_change", "win_rate"):
            data, text = tables.per_language(results, rows, metric)
            by_language.setdefault(metric, {})[panel] = data
            sections.append((f"Per language: {metric.replace('_', ' ')}, {panel}", text))
    for metric, tables_by_panel in by_language.items():
        plots.languages(tables_by_panel, metric, figures / f"languages_{metric}.png")
        for panel, table in tables_by_panel.items():
            for label, values in table.items():
                rows = [{"language": k, metric: v} for k, v in values.items() if k != "average"]
                write_json(plot_data / f"languages_{metric}" / panel / f"{_slug(label)}.json", rows)
    everyone = [m for rows in panels.values() for m in rows.values()]
    if spec.order:
        everyone += [spec.order.baseline, *spec.order.rows.values()]
    _, text = tables.per_language(results, {m: m for m in dict.fromkeys(everyone)}, "over_refusal")
    sections.append(("Over-refusal on benign look-alikes", text))


def tradeoff(results: Results, summary: dict, figures: Path, plot_data: Path) -> set[str]:
    """Harm against win-rate for every evaluated model, figure and plot data; the Pareto front."""
    points = [
        {"model": m, **{k: results[m].average(k) for k in (*tables.HEADLINE, "harmful_rate")}}
        for m in results.every_model()
    ]
    # A base that never harms leaves harm changes undefined; the rates order models the same.
    harm = "harm_change" if all(p["harm_change"] is not None for p in points) else "harmful_rate"
    points = [p for p in points if p[harm] is not None and p["win_rate"] is not None]
    front = plots.pareto_front(points, harm)
    plots.tradeoff(points, front, harm, figures / "tradeoff.png")
    write_json(
        plot_data / "tradeoff.json",
        [
            {"model": p["model"], "harm": p[harm], "harm_measure": harm, "win_rate": p["win_rate"]}
            | {"pareto": p["model"] in front}
            for p in points
        ],
    )
    summary["pareto_front"] = sorted(front)
    return front


def merge_diagnostics(spec: ReportConfig, root: Path, figures: Path) -> bool:
    """The per-layer interference of Table 1's merges, averaged over replicates, as a figure;
    whether any merge had diagnostics to draw."""
    layers = {}
    for by_phase in spec.objective.values():
        for ref in (by_phase.sft, by_phase.dpo):
            model = paths.parse(ref) if ref else None
            if model is not None and model.kind == "merge":
                replicates = sorted((root / paths.MERGE_REPORTS / model.name).glob("seed-*.json"))
                if replicates:
                    layers[ref] = mean_layers([json.loads(p.read_text()) for p in replicates])
    if layers:
        plots.diagnostics(layers, figures / "diagnostics.png")
    return bool(layers)


def ablation_weights(params: StudyConfig) -> dict[str, float]:
    """The ablated model's weight in each merge of the ablation, normalised by the total."""
    spec = params.report.ablation
    weights = {}
    for ref in spec.merges:
        model = paths.parse(ref)
        merge = params.merges.get(model.name) if model.kind == "merge" else None
        if merge is None:
            raise StageError(f"report.ablation.merges: {ref} is not a merge")
        given = {m.model: m.weight for m in merge.models}
        if spec.model not in given or not all(isinstance(w, float | int) for w in given.values()):
            raise StageError(
                f"report.ablation: {ref} must merge {spec.model}, every model with a number weight"
            )
        weights[ref] = given[spec.model] / sum(given.values())
    return weights


def mean_layers(replicates: list[list[dict]]) -> list[dict]:
    """Per layer, each interference figure averaged over a merge's replicates."""
    by_layer: dict[int, list[dict]] = {}
    for rows in replicates:
        for row in rows:
            by_layer.setdefault(row["layer"], []).append(row)
    out = []
    for layer, rows in sorted(by_layer.items()):
        mean = {"layer": layer}
        for key in ("sign_conflicts", "mean_cosine", "moved_by_two_or_more"):
            values = [r[key] for r in rows if r[key] is not None]
            mean[key] = round(sum(values) / len(values), 6) if values else None
        out.append(mean)
    return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_") or "row"


def render(
    params: StudyConfig,
    sections: list[tuple[str, str]],
    verdicts: list[dict],
    front: set[str],
    diagnostics: bool,
    searched: Sequence[dict] = (),
) -> str:
    """report.md: the claims' verdicts (and those on searched weights), the paper's figures,
    every section, the figures."""
    spec = params.report
    lines = [
        "# Mix data or merge models? This run",
        "",
        f"Languages: {', '.join(params.languages)}. Judge: `{params.evaluation.judge.kind}`. "
        f"Training seeds: {', '.join(map(str, params.seeds))}: every model, the base too, is "
        "the mean of its replicates, one per seed, and each seed's runs start from its own "
        "base. Harm change and win-rate are against the base model of the same seed, in %, "
        "averaged over languages (the harm change of the averaged harmful rates), "
        f"with {round(100 * params.evaluation.bootstrap.confidence)} % replication "
        "intervals: where another run, with other seeds or on another machine, would put "
        f"the figure ({params.evaluation.bootstrap.samples} bootstrap resamples of the "
        "prompts, plus the seeds' variance pooled over the languages and doubled for the "
        "other run's seeds), and after `·` the seed-to-seed spread (the largest replicate's "
        "figure minus the smallest). A Δ is a row's difference from its baseline on the "
        "same prompts, seed by seed, with a "
        f"{round(100 * spec.bootstrap.confidence)} % interval of the same kind "
        f"({spec.bootstrap.samples} resamples), **bold** where it excludes zero; every "
        "verdict on a claim reads these intervals. Lower harm change and higher win-rate "
        "are better.",
        "",
        "## What this run says about the paper's claims",
        "",
    ]
    lines += _verdict_lines(verdicts)
    if searched:
        lines += [
            "",
            "The same claims with the weights a search chose on dev (`report.searched`), "
            "judged on eval:",
            "",
            *_verdict_lines(searched),
        ]
    lines += ["", PAPER, ""]
    for title, text in sections:
        lines += [f"## {title}", "", text, ""]
    lines += [
        "## Figures",
        "",
        "Harm change against win-rate for every model; the dashed line joins the Pareto front "
        f"({', '.join(sorted(front))}).",
        "",
        "![harm change against win-rate](figures/tradeoff.png)",
        "",
        "![per language: harm change](figures/languages_harm_change.png)",
        "",
        "![per language: win-rate](figures/languages_win_rate.png)",
        "",
    ]
    if spec.ablation:
        lines += ["![the Linear weight ablation](figures/ablation.png)", ""]
    if diagnostics:
        lines += [
            "Why merges interfere: per layer, the share of entries two or more task vectors "
            "move whose signs conflict, and the mean cosine between task vectors.",
            "",
            "![merge diagnostics per layer](figures/diagnostics.png)",
            "",
        ]
    return "\n".join(lines)


def _verdict_lines(verdicts: list[dict]) -> list[str]:
    lines = []
    for v in verdicts:
        evidence = "; ".join(
            f"{e['difference']} {tables.number(e['value'], signed=True)} "
            f"[{tables.number(e['low'])}, {tables.number(e['high'])}]"
            for e in v["evidence"]
        )
        lines.append(f"- **{v['verdict']}**: {v['claim']} (paper: {v['paper']})")
        if evidence:
            lines.append(f"  This run: {evidence}.")
    return lines


def dvc_metrics(summary: dict) -> dict:
    """The summary as DVC metrics: the headline figures and differences, each merge's worst
    barrier, mean ‖τ‖/‖θ‖, whether its models are connected and the edge its middle keeps
    per objective, and the claims."""
    out = {}
    for table in ("objective", "language", "order"):
        for label, row in summary.get(table, {}).items():
            entries = row.items() if table == "objective" else [("", row)]
            for phase, e in entries:
                key = f"{label} {phase}".strip()
                figures = {m: e[m] for m in tables.HEADLINE}
                figures |= {
                    f"{m}_seed_spread": e[f"{m}_spread"]
                    for m in tables.HEADLINE
                    if e[f"{m}_spread"] is not None  # one seed has no spread
                }
                for m, d in e.get("vs_baseline", {}).items():
                    figures[f"{m}_vs_baseline"] = d["difference"]
                out.setdefault(table, {})[key] = figures
    for name, search in summary.get("searches", {}).items():
        out.setdefault("searches", {})[name] = {
            point: {
                **{f"dev_{m}": c["dev"][m] for m in tables.HEADLINE},
                **{f"eval_{m}": c["eval"][m] for m in tables.HEADLINE},
                **{f"optimism_{m}": c["optimism"][m] for m in tables.HEADLINE},
            }
            for point, c in search["chosen"].items()
        }
    for name, found in summary.get("mergeability", {}).items():
        sizes = [v for v in found["relative_norms"].values() if v is not None]
        out.setdefault("mergeability", {})[name] = {
            "barrier": round(max(found["barrier"].values()), 6),
            "relative_norm": round(sum(sizes) / len(sizes), 6) if sizes else None,
            "connected": all(found["connected"].values()),
            "edge_kept": {o: _rounded(k) for o, k in found["edge_kept_by_objective"].items()},
        }
    out["claims"] = summary["claims"]
    out["claims_supported"] = summary["claims_supported"]
    out["claims_tested"] = summary["claims_tested"]
    if "searched_claims" in summary:
        out["searched_claims"] = summary["searched_claims"]
    return out
