"""The `mixmerge` command: `validate`, and one command per pipeline stage.

Every command validates the whole params file before it does anything; a bad file exits with
code 2 and writes nothing. Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

# Nothing in a stage may reach a model hub or phone home; set before any library reads them.
for _name in (
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
    "DVC_NO_ANALYTICS",
):
    os.environ.setdefault(_name, "1")

import typer  # noqa: E402

from stages.core.config import Params, ParamsError, load_params  # noqa: E402
from stages.core.errors import StageError  # noqa: E402
from stages.core.suggest import did_you_mean  # noqa: E402

app = typer.Typer(
    name="mixmerge",
    help="Mix the data, or merge the models? The study's stages, one command each.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsFile = Annotated[
    Path,
    typer.Option(
        "--params",
        "-p",
        help="Params file to validate and run with (a profile from configs/, for instance).",
        dir_okay=False,
    ),
]


def _load(path: Path) -> Params:
    try:
        return load_params(path)
    except ParamsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _fail(error: Exception | str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(code)


@app.command()
def validate(params: ParamsFile = Path("params.yaml")) -> None:
    """Check a params file against the schema and report every problem at once (exit 2)."""
    loaded = _load(params)
    typer.echo(
        f"{params}: valid ({len(loaded.languages)} languages, "
        f"{len(loaded.data.sources)} data sources, {len(loaded.mixtures)} mixtures)"
    )


@app.command()
def prepare(params: ParamsFile = Path("params.yaml")) -> None:
    """Read every data source into train, eval and warm-up records per language and objective.

    Writes data/prepared/ and reports/prepare.json (rows kept, skipped and why).
    """
    loaded = _load(params)
    from stages import prepare as stage

    try:
        report = stage.run(loaded)
    except StageError as error:
        raise _fail(error) from None
    for split, per_language in report["counts"].items():
        total = sum(sum(c.values()) for c in per_language.values())
        typer.echo(f"{split}: {total} records")


@app.command()
def mix(
    name: Annotated[str, typer.Argument(help="A mixture named under `mixtures` in params.")],
    params: ParamsFile = Path("params.yaml"),
) -> None:
    """Draw a mixture's SFT and preference sets with its safety share.

    Writes data/mixtures/NAME/{sft,preference}.jsonl and manifest.json (counts per language and
    objective, requested and realised shares).
    """
    loaded = _load(params)
    if name not in loaded.mixtures:
        raise _fail(f"no mixture {name!r} in {params}{did_you_mean(name, loaded.mixtures)}", 2)
    from stages import mix as stage

    try:
        manifest = stage.run(loaded, name)
    except StageError as error:
        raise _fail(error) from None
    realised = manifest["realised"]
    typer.echo(
        f"{name}: {realised['examples']} examples, safety share {realised['safety_share']:.3f}"
    )


def main() -> None:
    app()
