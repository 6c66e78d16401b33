"""The `mixmerge` command: `validate`, one command per pipeline stage, `methods`, `regime`,
`run` and `warm`, each declared by its own module (stages/<stage>.py, stages/tools.py) and assembled
here, in the order `--help` lists them.

Every command validates the whole params file before it does anything; a bad file exits with
code 2 and writes nothing (stages/commands.py). Heavy libraries are imported inside the stages
that need them, so that a command with a mistake in it answers at once.
"""

from __future__ import annotations

import logging

from mixmerge.core.offline import go_offline

go_offline()  # before any library reads the variables

import typer  # noqa: E402
from mixmerge.stages import (  # noqa: E402
    base,
    evaluate,
    merge,
    mix,
    prepare,
    report,
    search,
    synthesize,
    tools,
    train,
    translate,
)

app = typer.Typer(
    name="mixmerge",
    help="Mix the data, or merge the models? The study's stages, one command each.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMANDS = {
    "validate": tools.validate,
    "translate": translate.command,
    "synthesize": synthesize.command,
    "prepare": prepare.command,
    "mix": mix.command,
    "base": base.command,
    "sft": train.sft,
    "dpo": train.dpo,
    "merge": merge.command,
    "evaluate": evaluate.command,
    "search": search.command,
    "report": report.command,
    "methods": tools.methods,
    "regime": tools.regime,
    "run": tools.run,
}
for name, function in COMMANDS.items():
    app.command(name)(function)
app.command("warm", context_settings=tools.WARM_SETTINGS)(tools.warm)


def run_in_worker(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    app(args=argv, prog_name="mixmerge")
    return 0


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app()
