"""The regime sweep's table and figure: for each experiment of a sweep over how far the SFT runs
move from their base (their learning rate, epochs or steps), the task vectors' size, the barrier
and edge kept of Table 1's merges, and the claims' verdicts. It answers "when does merging beat
mixing on this world?" with the quantity the merging literature says decides it beside each
verdict (docs/mergeability.md).

It reads what `dvc exp show --json` shows of each experiment: its params and the report's
metrics (`reports/summary.json`, written by `mixmerge report`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mixmerge import paths
from mixmerge.reporting import tables

SUMMARY = str(paths.SUMMARY)
# The params a regime sweep sets: how far SFT moves.
SWEPT = ("train.sft.learning_rate", "train.sft.epochs", "train.sft.max_steps")


@dataclass(frozen=True)
class Setting:
    """One experiment of the sweep, as the table reads it."""

    name: str
    swept: dict[str, object]  # the swept params' values (None where unset)
    relative_norm: float | None  # ‖τ‖/‖θ‖, the mean over Table 1's merges
    barrier: float | None  # the highest of Table 1's merges
    edge_kept: dict[str, float | None]  # per objective, the lowest of Table 1's merges
    claims: dict[str, str]  # claim: verdict


def settings(shown: Sequence[dict], swept: Sequence[str] = SWEPT) -> list[Setting]:
    """The experiments in `dvc exp show --json`'s output, and the commits and the workspace
    they start from, that have the report's metrics, in the order shown; the workspace only
    where it is not what an experiment left in it."""
    runs = []
    for baseline in shown:
        runs += [baseline] + [
            run for experiment in baseline.get("experiments") or [] for run in experiment["revs"]
        ]
    found = {}
    for run in runs:
        data = run.get("data") or {}
        summary = (data.get("metrics") or {}).get(SUMMARY, {}).get("data")
        params = (data.get("params") or {}).get("params.yaml", {}).get("data")
        if summary and params:
            rev = run.get("rev", "")
            name = run.get("name") or (rev if rev == "workspace" else rev[:7])
            found[name] = (params, summary)
    workspace = found.get("workspace")
    if workspace and any(data == workspace for name, data in found.items() if name != "workspace"):
        del found["workspace"]
    return [_setting(name, *data, swept) for name, data in found.items()]


def _setting(name: str, params: dict, summary: dict, swept: Sequence[str]) -> Setting:
    merges = [
        ref.partition("/")[2]
        for row in (params.get("report") or {}).get("objective", {}).values()
        for ref in row.values()
        if ref and ref.startswith("merge/")
    ]
    measured = [summary.get("mergeability", {}).get(m) for m in merges]
    measured = [m for m in measured if m]
    sizes = [m["relative_norm"] for m in measured if m["relative_norm"] is not None]
    edges: dict[str, float | None] = {}
    for m in measured:
        for objective, kept in (m.get("edge_kept") or {}).items():
            if kept is not None:
                known = edges.get(objective)
                edges[objective] = kept if known is None else min(known, kept)
    return Setting(
        name=name,
        swept={key: _get(params, key) for key in swept},
        relative_norm=sum(sizes) / len(sizes) if sizes else None,
        barrier=max((m["barrier"] for m in measured), default=None),
        edge_kept=edges,
        claims=dict(summary.get("claims", {})),
    )


def _get(params: dict, key: str) -> object:
    value: object = params
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def markdown(found: Sequence[Setting]) -> str:
    """One row per experiment: the swept values, the regime, and each claim's verdict."""
    swept = [key for key in SWEPT if any(s.swept.get(key) is not None for s in found)]
    objectives = sorted({o for s in found for o in s.edge_kept})
    claims = list(dict.fromkeys(c for s in found for c in s.claims))
    header = [
        "experiment", *(key.rpartition(".")[2] for key in swept), "‖τ‖/‖θ‖", "barrier",
        *(f"edge kept, {o}" for o in objectives), *(f"claim {i}" for i, _ in enumerate(claims, 1)),
    ]  # fmt: skip
    rows = [
        [
            s.name,
            *(_plain(s.swept.get(key)) for key in swept),
            tables.number(s.relative_norm, digits=3),
            tables.number(s.barrier, digits=3),
            *(tables.share(s.edge_kept.get(o)) for o in objectives),
            *(s.claims.get(c, "") for c in claims),
        ]  # fmt: skip
        for s in sorted(found, key=lambda s: (s.relative_norm is None, s.relative_norm or 0))
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", *(f"{i}. {claim}" for i, claim in enumerate(claims, start=1))]
    return "\n".join(lines) + "\n"


def figure(found: Sequence[Setting], path: Path) -> None:
    """Against ‖τ‖/‖θ‖ (log scale): the edge each objective keeps at the middle, the highest
    barrier, and how many claims each experiment supports."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = sorted((s for s in found if s.relative_norm), key=lambda s: s.relative_norm)
    sizes = [s.relative_norm for s in ordered]
    fig, (edges, claims) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for objective in sorted({o for s in ordered for o in s.edge_kept}):
        kept = [s.edge_kept.get(objective) for s in ordered]
        edges.plot(sizes, [100 * k if k is not None else None for k in kept], "o-", label=objective)
    edges.set(xscale="log", xlabel="‖τ‖/‖θ‖ of the SFT runs", ylabel="edge kept at the middle (%)")
    edges.set_ylim(0, 105)
    barriers = edges.twinx()  # nats, not a share: an axis of its own
    barriers.plot(sizes, [s.barrier for s in ordered], "k^--", label="highest barrier")
    barriers.set(ylabel="highest barrier (nats per token)")
    barriers.set_ylim(bottom=0)
    edges.set_title("Can the general and the safety model be merged?")
    lines = edges.get_legend_handles_labels()
    more = barriers.get_legend_handles_labels()
    edges.legend(lines[0] + more[0], lines[1] + more[1], loc="lower left")
    supported = [sum(v == "supported" for v in s.claims.values()) for s in ordered]
    tested = [sum(v != "not tested" for v in s.claims.values()) for s in ordered]
    claims.plot(sizes, supported, "o-", label="supported")
    claims.plot(sizes, tested, "s:", color="grey", label="tested")
    for s, count in zip(ordered, supported, strict=True):
        claims.annotate(s.name, (s.relative_norm, count), textcoords="offset points", xytext=(4, 4))
    claims.set(xscale="log", xlabel="‖τ‖/‖θ‖ of the SFT runs", ylabel="claims")
    claims.set_ylim(-0.2, max(tested, default=0) + 0.5)
    claims.yaxis.get_major_locator().set_params(integer=True)
    claims.set_title("The paper's claims on this world")
    claims.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plain(value: object) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def write(shown: Sequence[dict], out: Path) -> list[Setting]:
    """The table (`out`/regime.md) and the figure (`out`/regime.png) of the experiments in
    `dvc exp show --json`'s output; the settings found."""
    from mixmerge.core.errors import StageError

    found = settings(shown)
    if not found:
        raise StageError(
            f"no experiment here has the report's metrics ({SUMMARY}): run the sweep first, "
            "e.g. `mixmerge run -S train.sft.learning_rate=1e-4,3e-4,1e-3 --name regime`"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "regime.md").write_text(markdown(found), encoding="utf-8")
    figure(found, out / "regime.png")
    return found
