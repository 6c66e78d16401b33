"""The `mixmerge` command: `validate`, one command per pipeline stage, `methods`, `regime`,
`run` and `warm`, each declared by its own module (its `COMMANDS`: stages/<stage>.py,
stages/tools.py) and assembled here, found by importing every module of the package, so that a
new stage's module is its command.

Every command validates the whole params file before it does anything; a bad file exits with
code 2 and writes nothing (stages/commands.py). Heavy libraries are imported inside the stages
that need them, so that a command with a mistake in it answers at once.
"""

from __future__ import annotations

import logging

from mixmerge.core.offline import go_offline

go_offline()  # before any library reads the variables

import importlib  # noqa: E402
import pkgutil  # noqa: E402

import typer  # noqa: E402

from mixmerge import stages  # noqa: E402

app = typer.Typer(
    name="mixmerge",
    help="Mix the data, or merge the models? The study's stages, one command each.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Where `--help` lists the commands: the pipeline's order, then the tools. A command not named
# here (a new stage's) is listed after them.
HELP_ORDER = (
    "validate", "translate", "synthesize", "prepare", "mix", "base", "sft", "dpo", "merge",
    "evaluate", "search", "report", "methods", "regime", "run", "warm",
)  # fmt: skip


def _declared() -> tuple[dict, dict]:
    """Every command the package's modules declare (`COMMANDS`, name to function), and the
    context settings of those that take them (`CONTEXT_SETTINGS`)."""
    commands, settings = {}, {}
    for info in pkgutil.iter_modules(stages.__path__):
        if info.name.startswith("_") or info.name == "cli":  # __main__ would run the app
            continue
        module = importlib.import_module(f"{stages.__name__}.{info.name}")
        commands |= getattr(module, "COMMANDS", {})
        settings |= getattr(module, "CONTEXT_SETTINGS", {})
    return commands, settings


def _place(name: str) -> int:
    return HELP_ORDER.index(name) if name in HELP_ORDER else len(HELP_ORDER)


_commands, _settings = _declared()
COMMANDS = {name: _commands[name] for name in sorted(_commands, key=_place)}
for name, function in COMMANDS.items():
    app.command(name, context_settings=_settings.get(name))(function)


def run_in_worker(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    app(args=argv, prog_name="mixmerge")
    return 0


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app()
