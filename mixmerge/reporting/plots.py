"""The report's figures: PNGs for report.md, and their data as DVC plots (`dvc plots show`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from mixmerge import paths


def pareto_front(points: Sequence[dict], harm: str = "harm_change") -> set[str]:
    """The models no other beats on both axes: lower `harm` and higher win-rate."""
    front = set()
    for p in points:
        dominated = any(
            q[harm] <= p[harm]
            and q["win_rate"] >= p["win_rate"]
            and (q[harm] < p[harm] or q["win_rate"] > p["win_rate"])
            for q in points
        )
        if not dominated:
            front.add(p["model"])
    return front


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def tradeoff(points: Sequence[dict], front: set[str], harm: str, path: Path) -> None:
    """Harm (`harm`: its change, or the rate itself) against win-rate for every model, the
    Pareto front joined."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 5.5))
    colours = {"base": "black", "sft": "tab:blue", "dpo": "tab:orange", "merge": "tab:green"}
    for p in points:
        kind = paths.parse(p["model"]).kind
        axes.scatter(p[harm], p["win_rate"], color=colours[kind], s=22)
        axes.annotate(p["model"], (p[harm], p["win_rate"]), fontsize=6, alpha=0.8)
    edge = sorted((p for p in points if p["model"] in front), key=lambda p: p[harm])
    axes.plot([p[harm] for p in edge], [p["win_rate"] for p in edge], "k--", lw=1)
    for kind, colour in colours.items():
        axes.scatter([], [], color=colour, label=kind)
    _finish_tradeoff(plt, figure, axes, harm, "", path)


def ablation(rows: Sequence[dict], model: str, path: Path) -> None:
    plt = _pyplot()
    figure, left = plt.subplots(figsize=(6, 4))
    weights = [r["weight"] for r in rows]
    left.plot(weights, [r["harm_change"] for r in rows], "o-", color="tab:red")
    left.set_xlabel(f"weight of {model}")
    left.set_ylabel("harm change, %", color="tab:red")
    right = left.twinx()
    right.plot(weights, [r["win_rate"] for r in rows], "s-", color="tab:blue")
    right.set_ylabel("win-rate, %", color="tab:blue")
    left.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def languages(tables: Mapping[str, Mapping[str, Mapping]], metric: str, path: Path) -> None:
    """One panel per table (a phase, or the language comparison): a bar per model in each
    language."""
    plt = _pyplot()
    figure, panels = plt.subplots(1, len(tables), figsize=(6 * len(tables), 4), squeeze=False)
    for axes, (title, table) in zip(panels[0], tables.items(), strict=True):
        labels = list(table)
        codes = [c for c in next(iter(table.values())) if c != "average"]
        width = 0.8 / len(labels)
        for i, label in enumerate(labels):
            values = [table[label][c] if table[label][c] is not None else 0 for c in codes]
            axes.bar([x + i * width for x in range(len(codes))], values, width, label=label)
        axes.set_xticks([x + 0.4 - width / 2 for x in range(len(codes))], codes)
        axes.set_title(title)
        axes.set_ylabel(metric.replace("_", " "))
        axes.axhline(0, color="black", lw=0.5)
        axes.grid(axis="y", alpha=0.3)
    panels[0][-1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def diagnostics(layers: Mapping[str, Sequence[dict]], path: Path) -> None:
    """Per layer, for each merge: the share of sign conflicts and the mean cosine."""
    plt = _pyplot()
    figure, (conflicts, cosine) = plt.subplots(1, 2, figsize=(11, 4))
    for merge, rows in layers.items():
        x = [r["layer"] for r in rows]
        conflicts.plot(x, [r["sign_conflicts"] for r in rows], "o-", label=merge)
        cosine.plot(x, [r["mean_cosine"] for r in rows], "o-", label=merge)
    conflicts.set_title("share of moved entries whose signs conflict")
    cosine.set_title("mean cosine between task vectors")
    for axes in (conflicts, cosine):
        axes.set_xlabel("layer")
        axes.grid(alpha=0.3)
    cosine.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def search(found: Mapping, chosen: Mapping[int, list[str]], harm: str, path: Path) -> None:
    """A search's trials on dev (grey), its front joined, its chosen points ringed (`chosen`:
    trial number to the points it is, labelled once), and the references it was set against,
    on the same axes."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 5))
    scored = [t for t in found["trials"] if t.get("dev") and "same_as" not in t]
    xy = [(t["dev"]["average"][harm], t["dev"]["average"]["win_rate"]) for t in scored]
    xy = [(x, y) for x, y in xy if x is not None and y is not None]
    axes.scatter([x for x, _ in xy], [y for _, y in xy], color="grey", s=16, label="trials")
    by_number = {t["trial"]: t["dev"]["average"] for t in scored}
    edge = sorted((by_number[n][harm], by_number[n]["win_rate"]) for n in found["front"])
    axes.plot([x for x, _ in edge], [y for _, y in edge], "k--", lw=1, label="front")
    for number, labels in chosen.items():
        x, y = by_number[number][harm], by_number[number]["win_rate"]
        axes.scatter([x], [y], s=120, facecolors="none", edgecolors="tab:red", lw=1.5)
        axes.annotate(", ".join(labels), (x, y), fontsize=8, color="tab:red", xytext=(5, -10),
                      textcoords="offset points")  # fmt: skip
    for ref, figures in found["references"].items():
        x, y = figures["average"][harm], figures["average"]["win_rate"]
        if x is not None and y is not None:
            axes.scatter([x], [y], marker="s", color="tab:blue", s=30)
            axes.annotate(ref, (x, y), fontsize=7, color="tab:blue", xytext=(5, 3),
                          textcoords="offset points")  # fmt: skip
    # Lower right is harmful and weak: the front never lies there, and the labels stay clear.
    _finish_tradeoff(plt, figure, axes, harm, "dev ", path, legend="lower right")


def _finish_tradeoff(
    plt, figure, axes, harm: str, split: str, path: Path, legend: str = "best"
) -> None:
    """Label a harm-against-win-rate figure's axes (`split`: "dev " for a search's), save it."""
    axes.set_xlabel(
        f"{split}harm change against the base, % (lower is better)"
        if harm == "harm_change"
        else f"{split}harmful rate (lower is better)"
    )
    axes.set_ylabel(f"{split}win-rate against the base, % (higher is better)")
    axes.legend(loc=legend, fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
