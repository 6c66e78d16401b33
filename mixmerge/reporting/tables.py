"""The report's tables: figures from the evaluations, as data and as Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mixmerge.config.evaluation import BootstrapConfig
from mixmerge.config.report import ByPhaseConfig, ComparisonConfig, ReportConfig
from mixmerge.reporting.results import Results

# The training phases (the paper's SFT and DPO "stages"), a column group each.
PHASES = ("sft", "dpo")
HEADLINE = ("harm_change", "win_rate")
COLUMNS = ("harm change", "win-rate", "Δ harm vs baseline", "Δ win vs baseline")


def number(value: float | None, signed: bool = False, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    value += 0.0  # a zero prints as 0.0, never -0.0
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def share(value: float | None) -> str:
    """A share as a whole percentage (`76%`)."""
    return "n/a" if value is None else f"{value:.0%}"


def with_interval(
    value: float | None, interval: Mapping, digits: int = 1, spread: float | None = None
) -> str:
    """`value [low, high]`, and `· spread` (the seed-to-seed range) when there is one."""
    if value is None:
        return "n/a"
    low, high = (number(interval[end], digits=digits) for end in ("low", "high"))
    seeds = "" if spread is None else f" · {number(spread, digits=digits)}"
    return f"{number(value, digits=digits)} [{low}, {high}]{seeds}"


def change(d: Mapping | None) -> str:
    """A difference with its interval, in bold when the interval excludes zero."""
    if d is None:
        return "—"  # the baseline itself
    if d["difference"] is None:
        return "n/a"
    text = f"{number(d['difference'], signed=True)} [{number(d['low'])}, {number(d['high'])}]"
    return f"**{text}**" if d["clear"] else text


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def entry(results: Results, model: str, baseline: str | None, bootstrap: BootstrapConfig) -> dict:
    """A model's headline figures, and its difference from `baseline` on the same prompts."""
    evaluated = results[model]
    out = {"model": model}
    for metric in (*HEADLINE, "over_refusal"):
        out[metric] = evaluated.average(metric)
        out[f"{metric}_ci"] = evaluated.interval(metric)
        out[f"{metric}_seeds"] = evaluated.per_seed(metric)
        out[f"{metric}_spread"] = evaluated.spread(metric)
    if baseline is not None and baseline != model:
        compared = results.difference(model, baseline, bootstrap)
        out["vs_baseline"] = {metric: compared[metric] for metric in HEADLINE}
    return out


def objective(
    results: Results, report: ReportConfig, rows: Mapping[str, ByPhaseConfig] | None = None
) -> tuple[dict, str]:
    """Table 1 (or `rows` in its place): every row in both phases, and its difference from the
    phase's baseline."""
    data: dict[str, dict] = {}
    for label, by_phase in (report.objective if rows is None else rows).items():
        data[label] = {}
        for phase in PHASES:
            model = getattr(by_phase, phase)
            if model is not None:
                baseline = getattr(report.baseline, phase)
                data[label][phase] = entry(results, model, baseline, report.bootstrap)
    header = ["", *(f"{s.upper()} {c}" for s in PHASES for c in COLUMNS)]
    rows = [
        [label, *(cell for s in PHASES for cell in cells(data[label].get(s)))] for label in data
    ]
    return data, markdown(header, rows)


def cells(e: dict | None) -> list[str]:
    if e is None:
        return ["—"] * len(COLUMNS)
    against = e.get("vs_baseline", {})
    return [
        with_interval(e["harm_change"], e["harm_change_ci"], spread=e["harm_change_spread"]),
        with_interval(e["win_rate"], e["win_rate_ci"], spread=e["win_rate_spread"]),
        change(against.get("harm_change")),
        change(against.get("win_rate")),
    ]


def comparison(
    results: Results, table: ComparisonConfig, bootstrap: BootstrapConfig
) -> tuple[dict, str]:
    """Rows against one baseline (language-based merges, merge order)."""
    data = {"baseline": entry(results, table.baseline, None, bootstrap)}
    data |= {
        label: entry(results, model, table.baseline, bootstrap)
        for label, model in table.rows.items()
    }
    header = ["", "model", *COLUMNS, "over-refusal"]
    rows = [
        [
            f"baseline ({table.baseline})" if label == "baseline" else label,
            e["model"],
            *cells(e),
            with_interval(
                e["over_refusal"], e["over_refusal_ci"], digits=2, spread=e["over_refusal_spread"]
            ),
        ]
        for label, e in data.items()
    ]
    return data, markdown(header, rows)


def per_language(results: Results, models: Mapping[str, str], metric: str) -> tuple[dict, str]:
    """One metric per language (columns) for each model (rows)."""
    languages = sorted(results[next(iter(models.values()))].summary["languages"])
    data = {
        label: {
            **{lang: results[m].summary["languages"][lang][metric] for lang in languages},
            "average": results[m].average(metric),
        }
        for label, m in models.items()
    }
    header = ["", *languages, "average"]
    digits = 2 if metric in ("over_refusal", "harmful_rate", "general_accuracy") else 1
    rows = [
        [label, *(("n/a" if v is None else f"{v:.{digits}f}") for v in values.values())]
        for label, values in data.items()
    ]
    return data, markdown(header, rows)


def ablation(results: Results, weights: Mapping[str, float]) -> tuple[list[dict], str]:
    """The headline figures along the ablated weight."""
    data = [
        {"weight": weight, "model": model}
        | {m: results[model].average(m) for m in (*HEADLINE, "over_refusal")}
        | {f"{m}_spread": results[model].spread(m) for m in HEADLINE}
        for model, weight in sorted(weights.items(), key=lambda item: item[1])
    ]
    header = ["weight", "model", "harm change · seeds", "win-rate · seeds", "over-refusal"]

    def with_spread(d: dict, metric: str) -> str:
        spread = d[f"{metric}_spread"]
        return number(d[metric]) + ("" if spread is None else f" · {number(spread)}")

    rows = [
        [
            f"{d['weight']:.2f}",
            d["model"],
            with_spread(d, "harm_change"),
            with_spread(d, "win_rate"),
            f"{d['over_refusal']:.2f}",
        ]
        for d in data
    ]
    return data, markdown(header, rows)
