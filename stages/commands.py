"""What every `mixmerge` command shares: the `--params` option, the params check it runs first
(a bad file, or a section the command needs that params lack, exits with code 2 and writes
nothing), a name checked against a params table, and a stage's errors said without a
traceback. Each stage module declares its own command with these; stages/cli.py assembles
them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from mixmerge.config import ParamsError, StudyConfig
from mixmerge.core.errors import StageError
from mixmerge.core.suggest import did_you_mean
from mixmerge.validation import load_params

ParamsFile = Annotated[
    Path,
    typer.Option(
        "--params",
        "-p",
        help="Params file to validate and run with (a profile from configs/, for instance).",
        dir_okay=False,
    ),
]
PARAMS = Path("params.yaml")


def load(path: Path, *sections: str) -> StudyConfig:
    """The params at `path`, checked whole, with every section in `sections` present; else
    exit 2 saying every problem."""
    try:
        loaded = load_params(path)
    except ParamsError as error:
        raise fail(error, 2) from None
    missing = [section for section in sections if getattr(loaded, section) is None]
    if missing:
        named = " and ".join(f"`{section}`" for section in missing)
        raise fail(f"{path} has no {named} section{'s' if len(missing) > 1 else ''}", 2)
    return loaded


def fail(error: Exception | str, code: int = 1) -> typer.Exit:
    """Say `error` and exit with `code` (raise what this returns)."""
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(code)


def check_named(table: Iterable[str], name: str, what: str, params: Path) -> None:
    """Exit 2 when `name` is not in the params table `table` holding `what`s (its names)."""
    if name not in table:
        # A name typed at the command line: every candidate when none is close, however many.
        names = sorted(table)
        hint = did_you_mean(name, names) or (
            f"; expected one of: {', '.join(names)}" if names else f"; it has no {what}"
        )
        raise fail(f"no {what} {name!r} in {params}{hint}", 2)


Result = TypeVar("Result")


def run_stage(run: Callable[..., Result], *arguments, **options) -> Result:
    """Call a stage; a StageError exits 1 with its message and no traceback."""
    try:
        return run(*arguments, **options)
    except StageError as error:
        raise fail(error) from None


def run_named(
    run: Callable[..., Result], params: Path, table: str, what: str, name: str, *sections: str
) -> Result:
    """The stage of params table `table` entry `name` (a `what`), run after the params check
    (with the `sections` the stage needs): what every stage of one named entry does first."""
    loaded = load(params, *sections)
    check_named(getattr(loaded, table), name, what, params)
    return run_stage(run, loaded, name)
