"""The report's section per search: the front on dev against the references, the chosen
points' figures on eval, and how much of their dev figures was selection.

A search picks its points by their dev figures, so those figures are biased upwards: of many
points scored on the same prompts, the one that looks best is, in part, the one whose noise was
kindest (the winner's curse). The points are judged again on eval, which no search has seen,
on the same replicate (the first seed's, which the search scored) and on every seed. The
selection's *optimism* is how much better a point looked on dev than on eval, on that replicate:
the dev win-rate minus the eval win-rate, and the eval harm change minus the dev harm change
(positive: dev flattered the point). The references were not selected: their gap between the
splits is what dev and eval differ by without any selection, the yardstick for the points'.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.errors import StageError
from mixmerge.merging.mergeability import Mergeability
from mixmerge.reporting import plots, tables
from mixmerge.reporting.results import Results

OBJECTIVES = ("harm_change", "win_rate")


def read_search(name: str, root: Path) -> dict:
    path = root / paths.SEARCH_REPORTS / f"{name}.json"
    if not path.is_file():
        raise StageError(f"no {path}: run `dvc repro search@{name}` first")
    return json.loads(path.read_text())


def plot_rows(params: StudyConfig, root: Path) -> list[dict]:
    """Every scored trial of every search on dev, for one DVC plot: its search, whether it is
    on the front, its dev harm change and win-rate."""
    rows = []
    for name in params.searches:
        found = read_search(name, root)
        for trial in found["trials"]:
            dev = (trial.get("dev") or {}).get("average", {})
            if "same_as" in trial or dev.get("harm_change") is None:
                continue
            kind = "front" if trial["trial"] in found["front"] else "trial"
            rows.append(
                {"series": name, "kind": kind, "trial": trial["trial"]}
                | {m: dev.get(m) for m in OBJECTIVES}
            )
    return rows


def optimism(dev: Mapping, evaluated: Mapping) -> dict[str, float | None]:
    """How much better a model looked on dev than on eval, per objective (positive: dev
    flattered it): the win-rate's fall, and the harm change's rise."""
    gaps = {}
    for metric, sign in (("win_rate", 1), ("harm_change", -1)):
        a, b = dev.get(metric), evaluated.get(metric)
        gaps[metric] = None if a is None or b is None else round(sign * (a - b), 4)
    return gaps


def point_label(point: Mapping[str, float], recipe: Mapping) -> str:
    """`sft/mix0 0.3, sft/mix100 0.5` for a point of weights; other slots by their key path."""
    parts = []
    for slot, value in point.items():
        steps = slot.split(".")
        if steps[0] == "models" and len(steps) >= 3 and steps[1].startswith("["):
            model = recipe["models"][int(steps[1].strip("[]"))]["model"]
            rest = ".".join(steps[2:])
            name = model if rest == "weight" else f"{model} {rest}"
        else:
            name = slot.removeprefix("parameters.")
        parts.append(f"{name} {value:g}")
    return ", ".join(parts)


def search_section(
    results: Results, params: StudyConfig, name: str, root: Path, figures: Path
) -> tuple[dict, str]:
    """One search's part of the summary, and its Markdown."""
    config = params.searches[name]
    found = read_search(name, root)
    recipe = config.merge
    harm = found["front_on"]
    by_number = {t["trial"]: t for t in found["trials"]}
    seed = paths.seed_folder(params.seeds[0])
    label = {n: point_label(by_number[n]["point"], recipe) for n in found["front"]}
    picked: dict[int, list[str]] = {}  # trial: the points it is (best may be the knee too)
    for point, pick in found["chosen"].items():
        picked.setdefault(pick["trial"], []).append(point)

    def first_seed(model: str) -> dict[str, float | None]:
        # The replicate the search scored.
        return {m: results[model].per_seed(m).get(seed) for m in OBJECTIVES}

    chosen = {}
    for point, pick in found["chosen"].items():
        model = paths.ref("merge", paths.chosen_merge(name, point))
        on_seed = first_seed(model)
        chosen[point] = {
            "model": model,
            "trial": pick["trial"],
            "point": pick["point"],
            "clears_bar": pick.get("clears_bar"),
            "dev": pick["dev"]["average"],
            "eval_first_seed": on_seed,
            "eval": tables.entry(results, model, config.choose_against, params.report.bootstrap),
            "optimism": optimism(pick["dev"]["average"], on_seed),
        }
    yardstick = {}
    for ref, dev in found["references"].items():
        on_seed = first_seed(ref)
        yardstick[ref] = {
            "dev": dev["average"],
            "eval_first_seed": on_seed,
            "gap": optimism(dev["average"], on_seed),
        }

    plot_path = figures / f"search_{name}.png"
    plots.search(found, picked, harm, plot_path)
    data = {
        "method": found["method"],
        "points": found["points"],
        "scored": found["scored"],
        "same_merges": found["same_merges"],
        "skipped": found["skipped"],
        "front_on": harm,
        "front": [
            {"trial": n, "point": by_number[n]["point"], **by_number[n]["dev"]["average"]}
            | {"held_out_loss": _mean_loss(by_number[n])}
            for n in found["front"]
        ],
        "mergeability": found.get("mergeability"),
        "chosen": chosen,
        "references": yardstick,
    }
    return data, _markdown(name, config, data, label, picked, plot_path.name)


def _markdown(name: str, config, data: dict, label: dict, picked: dict, figure: str) -> str:
    harm = data["front_on"]
    harm_title = "harm change" if harm == "harm_change" else "harmful rate"
    digits = 1 if harm == "harm_change" else 3
    recipe = config.merge
    lines = [
        f"`search@{name}`: {data['method']} over the {recipe['method']} merge of "
        f"{', '.join(m['model'] for m in recipe['models'])} ({recipe['stage']} stage), "
        f"{data['points']} points: {data['scored']} merged and scored on dev, "
        f"{data['same_merges']} the same merge as an earlier point's, {data['skipped']} "
        f"refused by the merge. Scored on the dev split with the first seed's replicates; the "
        f"front is over {harm_title} (lower is better) and win-rate (higher). `best` is the "
        f"highest dev win-rate whose dev {harm_title} is no worse than "
        f"{config.choose_against}'s; `knee` the front's point nearest the ideal.",
        "",
        "**The front on dev**, against the references (not searched, on the same prompts):",
        "",
    ]
    rows = [
        [f"trial {row['trial']}" + "".join(f" ({p})" for p in picked.get(row["trial"], [])),
         label[row["trial"]], tables.number(row[harm], digits=digits),
         tables.number(row["win_rate"]), tables.number(row["held_out_loss"], digits=3)]
        for row in data["front"]
    ] + [
        [ref, "reference", tables.number(r["dev"][harm], digits=digits),
         tables.number(r["dev"]["win_rate"]), ""]
        for ref, r in data["references"].items()
    ]  # fmt: skip
    header = ["", "point", f"dev {harm_title}", "dev win-rate", "held-out loss"]
    lines += [tables.markdown(header, rows), ""]
    if data["mergeability"]:
        found = Mergeability.from_json(data["mergeability"])
        lines += [
            f"The models every point merges, on the first seed: {found.reading()}. Held-out "
            f"loss: each point's on the {found.split} answers, in nats per token, averaged over "
            "objectives and languages; along the straight path between the models it runs "
            f"{_path(found)}.",
            "",
        ]
    lines += [
        "**The chosen points on eval** (the prompts the report's figures use): dev and eval on "
        "the first seed's replicate, then eval over every seed with its interval and spread, "
        f"and the difference from {config.choose_against} on eval. Optimism: how much better "
        "the point looked on dev than on eval (the win-rate's fall, the harm change's rise); "
        "the references' gap, unselected, is what the two splits differ by on their own.",
        "",
    ]
    rows = []
    for point, c in data["chosen"].items():
        e = c["eval"]
        against = e.get("vs_baseline", {})
        flag = "" if c["clears_bar"] in (None, True) else " (clears no bar: lowest harm)"
        rows.append([
            f"{point}{flag}", f"`{c['model']}`: {label.get(c['trial'], c['trial'])}",
            f"{tables.number(c['dev']['harm_change'])} / {tables.number(c['dev']['win_rate'])}",
            f"{tables.number(c['eval_first_seed']['harm_change'])} / "
            f"{tables.number(c['eval_first_seed']['win_rate'])}",
            tables.with_interval(e["harm_change"], e["harm_change_ci"],
                                 spread=e["harm_change_spread"]),
            tables.with_interval(e["win_rate"], e["win_rate_ci"], spread=e["win_rate_spread"]),
            f"{tables.change(against.get('harm_change'))} / "
            f"{tables.change(against.get('win_rate'))}",
            _gaps(c["optimism"]),
        ])  # fmt: skip
    for ref, r in data["references"].items():
        rows.append([
            ref, "reference",
            f"{tables.number(r['dev']['harm_change'])} / {tables.number(r['dev']['win_rate'])}",
            f"{tables.number(r['eval_first_seed']['harm_change'])} / "
            f"{tables.number(r['eval_first_seed']['win_rate'])}",
            "", "", "", _gaps(r["gap"]),
        ])  # fmt: skip
    header = [
        "", "model: point", "dev harm / win", "eval harm / win (same seed)",
        "eval harm change", "eval win-rate", f"Δ vs {config.choose_against}",
        "optimism harm / win",
    ]  # fmt: skip
    lines += [tables.markdown(header, rows), "", f"![search {name} on dev](figures/{figure})"]
    return "\n".join(lines)


def _mean_loss(trial: Mapping) -> float | None:
    losses = trial.get("held_out_loss")
    return sum(losses.values()) / len(losses) if losses else None


def _path(found: Mergeability) -> str:
    """Each path's loss at its alphas, averaged over objectives and languages."""
    said = []
    for path in found.paths:
        at = [
            sum(losses[k] for losses in path.losses.values()) / len(path.losses)
            for k in range(len(path.alphas))
        ]
        steps = ", ".join(f"{a:g}: {loss:.3f}" for a, loss in zip(path.alphas, at, strict=True))
        said.append(f"from {path.start} to {path.end} ({steps})")
    return "; ".join(said)


def _gaps(gap: Mapping) -> str:
    return (
        f"{tables.number(gap['harm_change'], signed=True)} / "
        f"{tables.number(gap['win_rate'], signed=True)}"
    )
