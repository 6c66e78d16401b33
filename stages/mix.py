"""Stage `mix@<mixture>`: draw a mixture's SFT and preference sets from the prepared train
records, with its safety share, and write a manifest of what was realised (a DVC metric)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from mixmerge.stages.commands import PARAMS, ParamsFile, run_named

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.io import atomic_path, write_json, write_jsonl
from mixmerge.data.mixtures import FORM_ROWS, Manifest, build_mixture
from mixmerge.data.prepared import read_split


def run(params: StudyConfig, name: str, root: Path = paths.ROOT) -> Manifest:
    languages = params.mixture_languages(name)
    pool = read_split(root / paths.PREPARED, "train", languages)
    chosen, manifest = build_mixture(name, params.mixtures[name], languages, pool)
    with atomic_path(paths.mixture(name, root)) as tmp:
        for form in params.mixtures[name].forms:
            write_jsonl(tmp / paths.FORM_FILES[form], map(FORM_ROWS[form][1], chosen))
    with atomic_path(root / paths.MIXTURE_MANIFESTS / f"{name}.json") as tmp:
        write_json(tmp, manifest)
    return manifest


def outputs(stage: str) -> list[Path]:
    """What `mix@<name>` writes: its outs, metrics and plots, as dvc.yaml declares them."""
    name = stage.partition("@")[2]
    return [paths.MIXTURES / name, paths.MIXTURE_MANIFESTS / f"{name}.json"]


# --- the command -----------------------------------------------------------------------------

MixtureName = Annotated[str, typer.Argument(help="A mixture named under `mixtures` in params.")]


def command(name: MixtureName, params: ParamsFile = PARAMS) -> None:
    """Draw a mixture's SFT and preference sets with its safety share.

    Writes data/mixtures/NAME/{sft,preference}.jsonl and manifest.json (counts per language and
    objective, requested and realised shares).
    """
    manifest = run_named(run, params, "mixtures", "mixture", name)
    realised = manifest["realised"]
    typer.echo(
        f"{name}: {realised['examples']} examples, safety share {realised['safety_share']:.3f}"
    )


COMMANDS = {"mix": command}
