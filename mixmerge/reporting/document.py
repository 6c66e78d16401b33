"""The study's report: who wins on this run, mixing or merging, then the paper's tables side by
side with the paper, with intervals, figures and a verdict on each headline claim
(reports/report.md, reports/report.html, reports/summary.json, reports/figures/ and
reports/plots/).

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
from mixmerge.reporting import answer, claims, mergeability, page, plots, searches, tables
from mixmerge.reporting.provenance import provenance
from mixmerge.reporting.results import Results

PAPER = """The paper's Table 1 (Aakanksha et al., 2024; as reported in secondary sources):
at SFT the 15 % mix has harm change −56.6 and win-rate 67.4, and the Linear merge reaches
win-rate 76.0; at DPO the TIES merge lowers harm 10.4 points more than the mix; SLERP beats
the mix on both axes at both stages; TIES over the six monolingual models reaches −63.2 / 71.2,
and over en, fr and es −65.3 / 77.0."""

Sections = list[tuple[str, str]]  # (title, Markdown) of report.md, in order


TITLE = "Mix data or merge models? This run"


def write_report(params: StudyConfig, root: Path = paths.ROOT) -> dict:
    """Build the report from the evaluations under `root` and write its files; its summary."""
    summary, verdicts, body = build(params, root)
    ending = provenance(params)
    with atomic_path(root / paths.SUMMARY) as tmp:
        write_json(tmp, dvc_metrics(summary))
    lines = [f"# {TITLE}", "", *(f"- {v.sentence()}" for v in verdicts), "", body, ending, ""]
    with atomic_path(root / paths.REPORT) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    text = page.render(TITLE, verdicts, body + "\n" + ending, root / paths.FIGURES)
    with atomic_path(root / paths.REPORT_HTML) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return summary


def build(params: StudyConfig, root: Path = paths.ROOT) -> tuple[dict, list[answer.Verdict], str]:
    """Every table, claim and figure of the report: (summary, the answer's verdicts, the
    Markdown after the answer). Figures and plot data are written under `root` as they are
    drawn."""
    spec = params.report
    results = Results(root)
    figures, plot_data = root / paths.FIGURES, root / paths.PLOTS
    for folder in (figures, plot_data):  # nothing left from an earlier report
        remove(folder)
        folder.mkdir(parents=True)
    summary: dict = {}
    sections: Sections = []
    front = tradeoff(params, results, summary, figures, plot_data)
    sections.append(("Harm against general quality, every model", _tradeoff_text(front)))
    language_rows = comparison_tables(results, spec, summary, sections)
    per_language_tables(results, spec, language_rows, sections, figures, plot_data)
    if spec.ablation:
        summary["ablation"], text = tables.ablation(results, ablation_weights(params))
        plots.ablation(summary["ablation"], spec.ablation.model, figures / "ablation.png")
        text += "\n\n![the Linear weight ablation](figures/ablation.png)"
        sections.append((f"Linear ablation over the weight of {spec.ablation.model}", text))
        write_json(plot_data / "ablation.json", summary["ablation"])
    training_curves(params, root, plot_data)
    if merge_diagnostics(params, root, figures, plot_data):
        sections.append(("Why merges interfere", DIAGNOSTICS))
    summary["mergeability"], text = mergeability.section(params, root)
    if text:
        sections.append(("Can the models be merged? The loss between them", text))
    for name in params.searches:
        summary.setdefault("searches", {})[name], text = searches.search_section(
            results, params, name, root, figures
        )
        sections.append((f"Search {name}: weights chosen on dev, judged on eval", text))
    if params.searches:
        write_json(plot_data / "searches.json", searches.plot_rows(params, root))

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
    said = answer.answer(summary["objective"], spec)
    summary["answer"] = {f"{v.phase} {v.metric}": v.winner for v in said}
    summary["answer_lines"] = [v.sentence().replace("**", "") for v in said]
    return summary, said, render(params, sections, verdicts, searched)


DIAGNOSTICS = """Per layer, for Table 1's merges: the share of entries two or more task vectors
move whose signs conflict, and the mean cosine between task vectors. Merges of the same task
vectors share a line.

![merge diagnostics per layer](figures/diagnostics.png)"""


def _tradeoff_text(front: set[str]) -> str:
    return (
        "Each model's harm change and win-rate against the base, the mean over seeds with its "
        "95 % interval on each axis: mixtures (the runs trained on them) in blue, merges in "
        "green, SFT as circles, DPO as squares. Lower and to the right is better; the dashed "
        f"line joins the Pareto front ({', '.join(sorted(front))}).\n\n"
        "![harm change against win-rate, every model](figures/tradeoff.png)"
    )


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
    by_metric = {}
    for metric in ("harm_change", "win_rate"):
        by_panel, texts = {}, []
        for panel, rows in panels.items():
            by_panel[panel], text = tables.per_language(results, rows, metric)
            texts.append(f"**{panel}**\n\n{text}")
        plots.languages(by_panel, metric, figures / f"languages_{metric}.png")
        name = metric.replace("_", " ")
        texts.append(f"![per language: {name}](figures/languages_{metric}.png)")
        sections.append((f"Per language: {name}", "\n\n".join(texts)))
        by_metric[metric] = by_panel
    # For `dvc plots`: a row per table, model and language, both metrics (a missing one null).
    write_json(
        plot_data / "languages.json",
        [
            {"panel": panel, "model": label, "language": code}
            | {m: by_metric[m][panel][label][code] for m in by_metric}
            for panel, table in by_metric["harm_change"].items()
            for label, values in table.items()
            for code in values
            if code != "average"
        ],
    )
    everyone = [m for rows in panels.values() for m in rows.values()]
    if spec.order:
        everyone += [spec.order.baseline, *spec.order.rows.values()]
    _, text = tables.per_language(results, {m: m for m in dict.fromkeys(everyone)}, "over_refusal")
    sections.append(("Over-refusal on benign look-alikes", text))


def tradeoff(
    params: StudyConfig, results: Results, summary: dict, figures: Path, plot_data: Path
) -> set[str]:
    """Harm against win-rate for every evaluated model, with intervals, figure and plot data;
    the Pareto front."""
    measures = (*tables.HEADLINE, "harmful_rate")
    points = [
        {"model": m}
        | {k: results[m].average(k) for k in measures}
        | {f"{k}_ci": results[m].interval(k) for k in measures}
        for m in results.every_model()
    ]
    # A base that never harms leaves harm changes undefined; the rates order models the same.
    harm = "harm_change" if all(p["harm_change"] is not None for p in points) else "harmful_rate"
    points = [p for p in points if p[harm] is not None and p["win_rate"] is not None]
    front = plots.pareto_front(points, harm)
    phase = phases(params)
    plots.tradeoff(points, front, harm, phase, figures / "tradeoff.png")
    write_json(
        plot_data / "tradeoff.json",
        [
            {"model": p["model"], "harm": p[harm], "harm_measure": harm, "win_rate": p["win_rate"]}
            | {"pareto": p["model"] in front, "label": plots.short(p["model"])}
            | {"family": plots.FAMILIES[paths.parse(p["model"]).kind]}
            | {"phase": phase.get(p["model"], "base")}
            for p in points
        ],
    )
    summary["pareto_front"] = sorted(front)
    return front


def phases(params: StudyConfig) -> dict[str, str]:
    """The training phase of each run and merge of the study (sft or dpo), by model."""
    found = {
        paths.ref(kind, name): kind for kind in tables.PHASES for name in getattr(params, kind)
    }
    found |= {paths.ref("merge", name): merge.stage for name, merge in params.merges.items()}
    for name, search in params.searches.items():
        for point in paths.CHOSEN_POINTS:
            found[paths.ref("merge", paths.chosen_merge(name, point))] = search.merge.get("stage")
    return found


def merge_diagnostics(params: StudyConfig, root: Path, figures: Path, plot_data: Path) -> bool:
    """The per-layer interference of Table 1's merges, averaged over replicates, as a figure
    and DVC plot data; whether any merge had diagnostics to draw."""
    spec = params.report
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
        merged = phases(params)
        write_json(
            plot_data / "diagnostics.json",
            [
                {"phase": merged.get(ref), "series": plots.short(ref), "seed": "mean"} | row
                for ref, rows in layers.items()
                for row in rows
            ],
        )
    return bool(layers)


def training_curves(params: StudyConfig, root: Path, plot_data: Path) -> None:
    """Every run's training loss, per seed, from the logs its stage wrote: DVC plot data, one
    plot for all of them (the stages no longer declare a plot per run, metric and seed)."""
    rows = []
    for kind in tables.PHASES:
        for name in getattr(params, kind):
            for seed in params.seeds:
                log = paths.loss_log(f"{kind}/{name}", seed, root)
                if not log.is_file():
                    continue
                lines = log.read_text(encoding="utf-8").splitlines()[1:]
                for step, loss in (line.split("\t") for line in lines if line.strip()):
                    rows.append(
                        {"phase": kind, "series": name, "seed": seed}
                        | {"step": int(float(step)), "loss": float(loss)}
                    )
    write_json(plot_data / "training.json", rows)


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


def render(
    params: StudyConfig, sections: Sections, verdicts: list[dict], searched: Sequence[dict] = ()
) -> str:
    """report.md after the answer: the trade-off, the claims' verdicts (and those on searched
    weights) beside the paper's figures, how to read the figures, then every section with its
    figures."""
    spec = params.report
    (first, text), rest = sections[0], sections[1:]
    lines = [f"## {first}", "", text, "", "## What this run says about the paper's claims", ""]
    lines += _verdict_lines(verdicts)
    if searched:
        lines += [
            "",
            "The same claims with the weights a search chose on dev (`report.searched`), "
            "judged on eval:",
            "",
            *_verdict_lines(searched),
        ]
    lines += [
        "",
        PAPER,
        "",
        "## How to read the figures",
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
    ]
    for title, text in rest:
        lines += [f"## {title}", "", text, ""]
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
    out["answer"] = summary["answer"]
    out["claims"] = summary["claims"]
    out["claims_supported"] = summary["claims_supported"]
    out["claims_tested"] = summary["claims_tested"]
    if "searched_claims" in summary:
        out["searched_claims"] = summary["searched_claims"]
    return out
