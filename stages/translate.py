"""Stage `translate@<name>`: translate the records of one data source into the study's
languages (`translations.<name>`), cached per item, for a `generated` source to read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from mixmerge.stages.commands import PARAMS, ParamsFile, run_named

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.errors import StageError
from mixmerge.core.io import atomic_path, remove, write_json, write_jsonl
from mixmerge.data.sources import split_of
from mixmerge.translation import make_translator, translate_records


def run(params: StudyConfig, name: str, root: Path = paths.ROOT) -> dict:
    for output in outputs(f"translate@{name}"):
        remove(root / output)
    config = params.translations[name]
    records, read = split_of(
        config.source,
        params.data.sources[config.source],
        params.languages,
        config.split,
        config.max_per_language,
    )
    if not records:
        raise StageError(
            f"translations.{name}: data source {config.source!r} has no {config.split} records"
        )
    present = {record.language for record in records}
    targets = config.languages or [code for code in params.languages if code not in present]
    section = f"translations.{name}.translator"
    translator = make_translator(config.translator, section)
    # Every code checked before any work: an unknown one fails the stage with nothing written.
    translator.check_languages(sorted(present | set(targets)))
    rows, report = translate_records(
        name, records, config.fields, targets, translator, config.translator.kind
    )
    missing = [code for code in targets if not report["kept"].get(code)]
    if missing:
        why = "; ".join(
            f"{code}: {report['dropped'].get(code) or 'every record is in it already'}"
            for code in missing
        )
        raise StageError(
            f"translations.{name}: no record translated into {', '.join(missing)} ({why}); "
            f"usage {translator.usage()}"
        )
    report["read"] = {config.source: read}
    report["usage"] = translator.usage()
    with atomic_path(paths.generated("translate", name, root).parent) as tmp:
        write_jsonl(tmp / "records.jsonl", rows)
    with atomic_path(paths.generated_report("translate", name, root)) as tmp:
        write_json(tmp, report)
    return report


def outputs(stage: str) -> list[Path]:
    """What `translate@<name>` writes: its outs, metrics and plots, as dvc.yaml declares them."""
    name = stage.partition("@")[2]
    return [paths.GENERATED / "translate" / name, paths.generated_report("translate", name)]


# --- the command -----------------------------------------------------------------------------

TranslationName = Annotated[str, typer.Argument(help="A translation named under `translations`.")]


def command(name: TranslationName, params: ParamsFile = PARAMS) -> None:
    """Translate the records of a data source into the study's languages with an MT model
    (NLLB-200, M2M100) or an LLM endpoint, cached per item: a rerun or a killed run translates
    only what is missing.

    Writes data/generated/translate/NAME/records.jsonl (read by a `generated` source) and
    reports/generated/translate/NAME.json (kept, dropped and why, usage).
    """
    report = run_named(run, params, "translations", "translation", name)
    typer.echo(
        f"{name}: {sum(report['kept'].values())} records translated; usage {report['usage']}"
    )


COMMANDS = {"translate": command}
