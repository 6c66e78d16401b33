"""The commands that are not stages: `validate` a params file, list the merge `methods`, `run`
the study's stages (side by side here, or on SLURM), `warm` (a warm worker for a command's
stages), and `regime` (tabulate a regime sweep)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from mixmerge.stages.commands import PARAMS, ParamsFile, fail, load, run_stage

from mixmerge.core.suggest import did_you_mean

# `warm` takes the command it runs as it is, options and all.
WARM_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def validate(
    params: ParamsFile = PARAMS,
    show: Annotated[
        bool,
        typer.Option(
            "--show", help="Print the params checked: a profile composed with what it extends."
        ),
    ] = False,
) -> None:
    """Check a params file against the schema and report every problem at once (exit 2)."""
    loaded = load(params)
    from mixmerge.data.sources import check_sources

    problems = check_sources(loaded.data.sources, loaded.languages)
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise fail(f"{params}: {count} in its data files\n{lines}", 2)
    if show:
        from mixmerge.config.profiles import resolved_text

        typer.echo(resolved_text(params), nl=False)
        return
    typer.echo(
        f"{params}: valid ({len(loaded.languages)} languages, "
        f"{len(loaded.data.sources)} data sources, {len(loaded.mixtures)} mixtures)"
    )


def methods() -> None:
    """List the merge methods, their parameters and their papers.

    What each computes, what it merges, its parameters (per model and merge-wide) with their
    defaults and bounds, and its paper, as their definitions in mixmerge/merging/methods.py
    declare them (docs/merge-methods.md holds this table)."""
    from mixmerge.merging.registry import method_table

    typer.echo(method_table(), nl=False)


def regime(
    out: Annotated[Path, typer.Option(help="The folder the table and figure go to.")] = Path(
        "reports/regime"
    ),
) -> None:
    """Tabulate a regime sweep: for each DVC experiment of this workspace, how far its SFT runs
    moved from their base (‖τ‖/‖θ‖), the barrier and the edge kept of Table 1's merges, and
    the paper's claims' verdicts. Run the sweep first, for instance
    `mixmerge run -S train.sft.learning_rate=1e-4,3e-4,1e-3 --name regime`.

    Writes OUT/regime.md and OUT/regime.png (docs/mergeability.md).
    """
    import json
    import subprocess

    from mixmerge.reporting import regime as table

    shown = subprocess.run(["dvc", "exp", "show", "--json"], capture_output=True, text=True)
    if shown.returncode != 0:
        raise fail(f"`dvc exp show` failed: {shown.stderr.strip()}")
    found = run_stage(table.write, json.loads(shown.stdout), out)
    typer.echo(f"{out}/regime.md, {out}/regime.png: {len(found)} experiments")


def run(
    targets: Annotated[
        list[str] | None,
        typer.Argument(help="Stages to run with what they need, as `dvc repro` takes them."),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", "-e", help="Where stages run: local or slurm.")
    ] = "local",
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Local stages at once.")] = 2,
    detach: Annotated[
        bool, typer.Option(help="Submit the SLURM jobs and return; --status reports on them.")
    ] = False,
    status: Annotated[
        bool, typer.Option(help="Where the last SLURM submission's jobs stand, then return.")
    ] = False,
    cancel: Annotated[
        bool, typer.Option(help="Cancel this workspace's queued and running SLURM jobs.")
    ] = False,
    set_param: Annotated[
        list[str] | None,
        typer.Option(
            "--set-param",
            "-S",
            help="A sweep, as `dvc exp run --queue -S` takes it (`key=0.2,0.8`; several "
            "multiply): each point runs as an experiment.",
        ),
    ] = None,  # fmt: skip
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", help="The sweep's experiments are named NAME-1, NAME-2..."),
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            help="Run a profile (configs/NAME.yaml) in a workspace of its own, .profiles/NAME/, "
            "leaving params.yaml as it is.",
            dir_okay=False,
        ),
    ] = None,
    params: ParamsFile = PARAMS,
) -> None:
    """Run what `dvc repro` would, with independent stages at once: side by side here
    (`--executor local --jobs N`), or as SLURM jobs ordered by SLURM's dependencies
    (`--executor slurm`, resources from the params' `cluster` section). Every stage runs
    through DVC, which stays the record of what ran (dvc.lock); a failed stage cancels the
    stages that need it, and a rerun runs only what is missing. With `-S`, each point of the
    sweep runs as a DVC experiment (`dvc exp run --temp`), N at once or one SLURM job each,
    and computes only the stages its params change. With `--profile`, all of this runs in the
    profile's own workspace, .profiles/NAME/: a git worktree of this code (uncommitted changes
    to tracked files included) whose params.yaml is the composed profile, with its own outputs
    and dvc.lock, and the DVC cache shared (docs/profiles.md)."""
    from mixmerge import cluster
    from mixmerge.cluster import profile as profiles
    from mixmerge.data.sources import named_files
    from mixmerge.inputs import link_inputs

    root = Path.cwd()
    if profile is not None:
        if not (status or cancel):
            load(profile)  # a bad profile makes no workspace
            root = run_stage(profiles.workspace, root, profile)
        else:
            root = root / profiles.FOLDER / profile.stem
            if not root.is_dir():
                raise fail(f"{profile} has not run here: no {root}", 2)
        os.chdir(root)  # DVC takes targets where it runs
        params = Path("params.yaml")  # the workspace's: the profile, composed
    if status or cancel:
        if cancel:
            run_stage(cluster.cancel, root)
            return
        outcome = run_stage(cluster.report, root)
        raise typer.Exit(0 if outcome.ok else 1)
    if executor not in cluster.EXECUTORS:
        raise fail(f"no executor {executor!r}{did_you_mean(executor, cluster.EXECUTORS)}", 2)
    if detach and executor != "slurm":
        raise fail("--detach needs --executor slurm: local stages end with this command", 2)
    if name and not set_param:
        raise fail("--name names the experiments of a sweep: give it with -S", 2)
    loaded = load(params)
    # A file newly matching a source's glob changes what prepare reads: DVC sees it by its link.
    link_inputs("prepare", named_files(loaded.data.sources))
    outcome = run_stage(
        cluster.run, root, targets or [], loaded.cluster, executor, jobs, detach,
        settings=set_param or [], name=name,
    )  # fmt: skip
    if not detach and not outcome.ok:
        raise typer.Exit(1)


def warm(context: typer.Context) -> None:
    """Run a command (`mixmerge warm -- dvc repro`) with a warm worker: torch, transformers
    and TRL are imported once, and every `mixmerge` stage the command starts runs in a fork of
    it, instead of paying those imports again (seconds per stage on small studies).
    """
    if not context.args:
        raise fail("give the command to run, e.g. `mixmerge warm -- dvc repro`", 2)
    from mixmerge.warm import run_warm

    raise typer.Exit(run_warm(context.args))


COMMANDS = {"validate": validate, "methods": methods, "regime": regime, "run": run, "warm": warm}
CONTEXT_SETTINGS = {"warm": WARM_SETTINGS}
