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
    # The SVG's ids from a fixed salt, not a random one: the same figure, the same bytes.
    matplotlib.rcParams["svg.hashsalt"] = "mixmerge"
    import matplotlib.pyplot as plt

    return plt


def _save(plt, figure, path: Path, layout: bool = True) -> None:
    """`path` (a PNG, for report.md) and the same figure as SVG beside it (for report.html),
    neither stamped with the date, so that a rerun writes the same bytes. `layout`: fit the
    axes to the figure first (not once labels are placed against them)."""
    if layout:
        figure.tight_layout()
    figure.savefig(path, dpi=120)
    figure.savefig(path.with_suffix(".svg"), metadata={"Date": None})
    plt.close(figure)


def place_labels(axes, figure, labelled: Sequence[tuple[float, float, str]], fontsize: float = 7):
    """Label each point (x, y, text) where the label overlaps no other label and no point:
    the first free spot on rings of offsets around it, further out (with a leader line) when a
    ring is full, else the spot that overlaps least. Points drawn at the same spot share one
    label. The labels, as placed."""
    from matplotlib.transforms import Bbox

    renderer = figure.canvas.get_renderer()
    to_display = axes.transData.transform
    spots: dict[tuple[int, int], list] = {}  # points within a pixel or two are one spot
    for x, y, text in labelled:
        px, py = to_display((x, y))
        spots.setdefault((round(px / 3), round(py / 3)), [x, y, []])[2].append(text)
    taken = []
    for x, y, _ in spots.values():
        px, py = to_display((x, y))
        taken.append(Bbox.from_extents(px - 4, py - 4, px + 4, py + 4))
    frame = axes.get_window_extent(renderer)
    placed = []
    for x, y, texts in sorted(spots.values(), key=lambda p: (-p[1], p[0])):
        best, least = None, None
        for radius, (dx, dy) in ((r, d) for r in (6, 16, 30, 48, 70) for d in _RING):
            candidate = axes.annotate(
                ", ".join(texts), (x, y), xytext=(dx * radius, dy * radius),
                textcoords="offset points", fontsize=fontsize,
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                arrowprops=None if radius <= 6 else LEADER,
            )  # fmt: skip
            box = candidate.get_window_extent(renderer).padded(2)
            outside = not (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1))
            overlap = sum(_overlap(box, other) for other in taken) + (1e9 if outside else 0)
            if least is None or overlap < least:
                if best is not None:
                    best[0].remove()
                best, least = (candidate, box), overlap
            else:
                candidate.remove()
            if overlap == 0:
                break
        taken.append(best[1])
        placed.append(best[0])
    return placed


def _overlap(a, b) -> float:
    """The area two boxes (matplotlib `Bbox`es) share."""
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0) * max(height, 0)


LEADER = {"arrowstyle": "-", "lw": 0.4, "alpha": 0.6}  # from a label placed away to its point
# Directions around a point, right first (where a label reads naturally), in units of a radius.
_RING = [(1, 0.3), (1, -0.8), (-1, 0.3), (-1, -0.8), (0, 1), (0, -1), (0.7, 0.9), (0.7, -1.2),
         (-0.7, 0.9), (-0.7, -1.2)]  # fmt: skip


def tradeoff(
    points: Sequence[dict], front: set[str], harm: str, phases: Mapping[str, str], path: Path
) -> None:
    """Harm (`harm`: its change, or the rate itself) against win-rate for every model, with
    its interval on each axis; mixtures and merges told apart by colour, SFT and DPO by marker
    (`phases`: model to sft or dpo); the Pareto front joined, and every model labelled."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 6.5))
    for p in points:
        family = FAMILIES[paths.parse(p["model"]).kind]
        marker = MARKERS.get(phases.get(p["model"], ""), "*")
        x, y = p[harm], p["win_rate"]
        errors = {}
        for axis, metric in (("xerr", harm), ("yerr", "win_rate")):
            ci = p.get(f"{metric}_ci")
            if ci and ci.get("low") is not None:
                errors[axis] = [[x - ci["low"] if axis == "xerr" else y - ci["low"]],
                                [ci["high"] - x if axis == "xerr" else ci["high"] - y]]  # fmt: skip
        axes.errorbar(x, y, fmt=marker, color=COLOURS[family], ms=6, elinewidth=0.7,
                      capsize=0, alpha=0.9, **errors)  # fmt: skip
    edge = sorted((p for p in points if p["model"] in front), key=lambda p: p[harm])
    axes.plot([p[harm] for p in edge], [p["win_rate"] for p in edge], "k--", lw=1)
    for family, colour in COLOURS.items():
        axes.scatter([], [], color=colour, label=family)
    for phase, marker in MARKERS.items():
        axes.scatter([], [], color="grey", marker=marker, label=phase.upper())
    axes.plot([], [], "k--", lw=1, label="Pareto front")
    axes.margins(0.12)
    axes.set_title("Harm against general quality: every model (mean over seeds, 95 % intervals)")
    _finish_tradeoff(
        plt, figure, axes, harm, "", path,
        labels=[(p[harm], p["win_rate"], short(p["model"])) for p in points],
    )  # fmt: skip


def short(model: str) -> str:
    """A merge by its name (its colour says it is one); a run by its reference."""
    return model.removeprefix("merge/")


# What a model is, for the trade-off's colours: the base, a run trained on a mixture, a merge.
FAMILIES = {"base": "base", "sft": "mixture", "dpo": "mixture", "merge": "merge"}
COLOURS = {"base": "black", "mixture": "tab:blue", "merge": "tab:green"}
MARKERS = {"sft": "o", "dpo": "s"}


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
    left.set_title(f"The Linear ablation over the weight of {model}")
    _save(plt, figure, path)


def languages(tables: Mapping[str, Mapping[str, Mapping]], metric: str, path: Path) -> None:
    """One heat map per table (a phase, or the language comparison): a row per model, a column
    per language and the average, each cell its value; a missing value is a blank, hatched
    cell marked n/a, never a zero. Green is better: lower harm, higher win-rate."""
    import numpy as np

    plt = _pyplot()
    rows = max(len(t) for t in tables.values())
    figure, panels = plt.subplots(
        1, len(tables), figsize=(5.5 * len(tables), 1.2 + 0.45 * rows), squeeze=False
    )
    colours = "RdYlGn_r" if metric == "harm_change" else "RdYlGn"
    everything = [
        v for t in tables.values() for r in t.values() for v in r.values() if v is not None
    ]
    centre = 0.0 if metric == "harm_change" else 50.0
    reach = max((abs(v - centre) for v in everything), default=1.0) or 1.0
    for axes, (title, table) in zip(panels[0], tables.items(), strict=True):
        labels = list(table)
        codes = list(next(iter(table.values())))
        values = np.array(
            [[np.nan if table[m][c] is None else table[m][c] for c in codes] for m in labels]
        )
        axes.imshow(np.ma.masked_invalid(values), cmap=colours, aspect="auto",
                    vmin=centre - reach, vmax=centre + reach)  # fmt: skip
        for i, j in np.ndindex(values.shape):
            if np.isnan(values[i, j]):
                axes.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                             color="#bbbbbb", lw=0))  # fmt: skip
                axes.text(j, i, "n/a", ha="center", va="center", fontsize=7, color="#666666")
            else:
                dark = abs(values[i, j] - centre) > 0.6 * reach  # the scale's ends are dark
                axes.text(j, i, f"{values[i, j]:.1f}", ha="center", va="center", fontsize=7,
                          color="white" if dark else "black")  # fmt: skip
        axes.set_xticks(range(len(codes)), codes)
        axes.set_yticks(range(len(labels)), labels, fontsize=8)
        axes.set_title(f"{metric.replace('_', ' ')}, {title}")
        axes.tick_params(length=0)
    _save(plt, figure, path)


def diagnostics(layers: Mapping[str, Sequence[dict]], path: Path) -> None:
    """Per layer, for each merge: the share of sign conflicts and the mean cosine. Merges of
    the same task vectors draw the same lines: they share one, labelled with all their names."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    figure, (conflicts, cosine) = plt.subplots(1, 2, figsize=(12, 4.2))
    shared: dict[tuple, list[str]] = {}
    for merge, rows in layers.items():
        key = tuple((r["layer"], r["sign_conflicts"], r["mean_cosine"]) for r in rows)
        shared.setdefault(key, []).append(merge)
    for key, merges in shared.items():
        x = [layer for layer, _, _ in key]
        label = ", ".join(merges)
        conflicts.plot(x, [c for _, c, _ in key], "o-", label=label)
        cosine.plot(x, [c for _, _, c in key], "o-", label=label)
    conflicts.set_title("share of moved entries whose signs conflict")
    cosine.set_title("mean cosine between task vectors")
    for axes in (conflicts, cosine):
        axes.set_xlabel("layer")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    cosine.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    _save(plt, figure, path)


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
    plt, figure, axes, harm: str, split: str, path: Path, legend: str = "best", labels=()
) -> None:
    """Label a harm-against-win-rate figure's axes (`split`: "dev " for a search's) and its
    points (`labels`: (x, y, text), placed apart), save it."""
    axes.set_xlabel(
        f"{split}harm change against the base, % (lower is better)"
        if harm == "harm_change"
        else f"{split}harmful rate (lower is better)"
    )
    axes.set_ylabel(f"{split}win-rate against the base, % (higher is better)")
    axes.legend(loc=legend, fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    if labels:
        axes.set_xlim(axes.get_xlim())  # fixed before labels are measured against them
        axes.set_ylim(axes.get_ylim())
        place_labels(axes, figure, labels)
    _save(plt, figure, path, layout=False)  # laid out above, before any label was placed
