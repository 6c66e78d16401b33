"""Stage `synthesize@<name>`: answer the train prompts of a prompt-only safety source with a
safe and a harmful side, judge every answer, and keep what passes (`syntheses.<name>`), for a
`generated` source to read."""

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
from mixmerge.judging import make_judge
from mixmerge.synthesis import synthesize
from mixmerge.synthesis.writers import make_writer


def run(params: StudyConfig, name: str, root: Path = paths.ROOT) -> dict:
    for output in outputs(f"synthesize@{name}"):
        remove(root / output)
    config = params.syntheses[name]
    seed_prompts, read = split_of(
        config.source,
        params.data.sources[config.source],
        params.languages,
        "train",
        config.max_per_language,
    )
    if not seed_prompts:
        raise StageError(
            f"syntheses.{name}: data source {config.source!r} has no train prompts to answer "
            "(set its `use` to train or both)"
        )
    section = f"syntheses.{name}"
    judge = make_judge(config.judge, f"{section}.judge")
    safe = make_writer(config.safe, f"{section}.safe")
    harmful = make_writer(config.harmful, f"{section}.harmful")
    rows, report = synthesize(name, seed_prompts, config.rephrase, safe, harmful, judge)
    report["read"] = {config.source: read}
    report["usage"] = {"safe": safe.usage(), "harmful": harmful.usage(), "judge": judge.usage()}
    empty = [code for code, kept in report["kept"].items() if not kept]
    if empty:
        raise StageError(
            f"{section}: no example kept for {', '.join(empty)}; dropped: "
            + "; ".join(f"{code} {report['dropped'][code]}" for code in empty)
            + f"; usage {report['usage']}"
        )
    with atomic_path(paths.generated("synthesize", name, root).parent) as tmp:
        write_jsonl(tmp / "records.jsonl", rows)
    with atomic_path(paths.generated_report("synthesize", name, root)) as tmp:
        write_json(tmp, report)
    return report


def outputs(stage: str) -> list[Path]:
    """What `synthesize@<name>` writes: its outs, metrics and plots, as dvc.yaml declares them."""
    name = stage.partition("@")[2]
    return [paths.GENERATED / "synthesize" / name, paths.generated_report("synthesize", name)]


# --- the command -----------------------------------------------------------------------------

SynthesisName = Annotated[str, typer.Argument(help="A synthesis named under `syntheses`.")]


def command(name: SynthesisName, params: ParamsFile = PARAMS) -> None:
    """Answer the train prompts of a prompt-only safety source: a safe answer (the SFT target
    and the chosen side) and a harmful one (the rejected side) from a teacher endpoint or a
    local model, optionally with new prompts rephrased from the seed prompts; every answer is
    judged, and what fails is dropped and counted per language and reason.

    Writes data/generated/synthesize/NAME/records.jsonl (read by a `generated` source) and
    reports/generated/synthesize/NAME.json (kept, dropped and why, tokens and cost).
    """
    report = run_named(run, params, "syntheses", "synthesis", name)
    dropped = sum(sum(reasons.values()) for reasons in report["dropped"].values())
    typer.echo(f"{name}: {sum(report['kept'].values())} examples kept, {dropped} dropped")


COMMANDS = {"synthesize": command}
