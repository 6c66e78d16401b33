"""The `mixmerge` command: `validate`, and one command per pipeline stage.

Every command validates the whole params file before it does anything; a bad file exits with
code 2 and writes nothing. Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from mixmerge.core.offline import go_offline

go_offline()  # before any library reads the variables

import typer  # noqa: E402

from mixmerge.config import ParamsError, StudyConfig  # noqa: E402
from mixmerge.core.errors import StageError  # noqa: E402
from mixmerge.core.suggest import did_you_mean  # noqa: E402
from mixmerge.validation import load_params  # noqa: E402

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


def _load(path: Path) -> StudyConfig:
    try:
        return load_params(path)
    except ParamsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _fail(error: Exception | str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(code)


def _check_named(table: Iterable[str], name: str, what: str, params: Path) -> None:
    """Exit 2 when `name` is not in the params table `table` holding `what`s (its names)."""
    if name not in table:
        raise _fail(f"no {what} {name!r} in {params}{did_you_mean(name, table)}", 2)


def _run_stage(run, *arguments, **options):
    """Call a stage; a StageError exits 1 with its message and no traceback."""
    try:
        return run(*arguments, **options)
    except StageError as error:
        raise _fail(error) from None


@app.command()
def validate(
    params: ParamsFile = Path("params.yaml"),
    show: Annotated[
        bool,
        typer.Option(
            "--show", help="Print the params checked: a profile composed with what it extends."
        ),
    ] = False,
) -> None:
    """Check a params file against the schema and report every problem at once (exit 2)."""
    loaded = _load(params)
    from mixmerge.data.sources import check_sources

    problems = check_sources(loaded.data.sources, loaded.languages)
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise _fail(f"{params}: {count} in its data files\n{lines}", 2)
    if show:
        from mixmerge.config.profiles import resolved_text

        typer.echo(resolved_text(params), nl=False)
        return
    typer.echo(
        f"{params}: valid ({len(loaded.languages)} languages, "
        f"{len(loaded.data.sources)} data sources, {len(loaded.mixtures)} mixtures)"
    )


@app.command()
def translate(
    name: Annotated[str, typer.Argument(help="A translation named under `translations`.")],
    params: ParamsFile = Path("params.yaml"),
) -> None:
    """Translate the records of a data source into the study's languages with an MT model
    (NLLB-200, M2M100) or an LLM endpoint, cached per item: a rerun or a killed run translates
    only what is missing.

    Writes data/generated/translate/NAME/records.jsonl (read by a `generated` source) and
    reports/generated/translate/NAME.json (kept, dropped and why, usage).
    """
    loaded = _load(params)
    _check_named(loaded.translations, name, "translation", params)
    from stages import translate as stage

    report = _run_stage(stage.run, loaded, name)
    typer.echo(
        f"{name}: {sum(report['kept'].values())} records translated; usage {report['usage']}"
    )


@app.command()
def synthesize(
    name: Annotated[str, typer.Argument(help="A synthesis named under `syntheses`.")],
    params: ParamsFile = Path("params.yaml"),
) -> None:
    """Answer the train prompts of a prompt-only safety source: a safe answer (the SFT target
    and the chosen side) and a harmful one (the rejected side) from a teacher endpoint or a
    local model, optionally with new prompts rephrased from the seeds; every answer is judged,
    and what fails is dropped and counted per language and reason.

    Writes data/generated/synthesize/NAME/records.jsonl (read by a `generated` source) and
    reports/generated/synthesize/NAME.json (kept, dropped and why, tokens and cost).
    """
    loaded = _load(params)
    _check_named(loaded.syntheses, name, "synthesis", params)
    from stages import synthesize as stage

    report = _run_stage(stage.run, loaded, name)
    dropped = sum(sum(reasons.values()) for reasons in report["dropped"].values())
    typer.echo(f"{name}: {sum(report['kept'].values())} examples kept, {dropped} dropped")


@app.command()
def prepare(params: ParamsFile = Path("params.yaml")) -> None:
    """Read every data source into train, eval and warm-up records per language and objective.

    Writes data/prepared/ and reports/prepare.json (rows kept, skipped and why).
    """
    loaded = _load(params)
    from stages import prepare as stage

    report = _run_stage(stage.run, loaded)
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
    _check_named(loaded.mixtures, name, "mixture", params)
    from stages import mix as stage

    manifest = _run_stage(stage.run, loaded, name)
    realised = manifest["realised"]
    typer.echo(
        f"{name}: {realised['examples']} examples, safety share {realised['safety_share']:.3f}"
    )


@app.command()
def base(params: ParamsFile = Path("params.yaml")) -> None:
    """Build the base model every run starts from (`base` in params).

    builtin: train a BPE tokenizer and a small Cohere model on the embedded world's corpus, then
    on its warm-up split. hf: resolve a hub id (local cache) or a path, check it, link it.
    Writes models/base/seed-<s> for every seed and reports/train/base.json.
    """
    loaded = _load(params)
    if loaded.base is None or loaded.train is None:
        raise _fail(f"{params} declares no `base` and `train`", 2)
    from stages import base as stage

    _run_stage(stage.run, loaded)
    typer.echo(f"models/base: ready ({len(loaded.seeds)} seeds)")


RunName = Annotated[str, typer.Argument(help="A run named under `sft` or `dpo` in params.")]


def _train(kind: str, name: str, params: Path) -> None:
    loaded = _load(params)
    _check_named(getattr(loaded, kind), name, f"{kind} run", params)
    from mixmerge.training.launch import relaunch
    from stages import train

    try:
        if relaunch(loaded.train.runtime, [kind, name, "--params", str(params)]):
            return
        metrics = train.run(loaded, kind, name)
    except StageError as error:
        raise _fail(error) from None
    losses = ", ".join(
        f"{replicate} {figures.get('train_loss', float('nan')):.4f}"
        for replicate, figures in metrics.items()
    )
    typer.echo(f"models/{kind}/{name}: trained, loss {losses}")


@app.command()
def sft(name: RunName, params: ParamsFile = Path("params.yaml")) -> None:
    """Supervised fine-tuning of run NAME, once per seed of `seeds`: its initial model on its
    mixture's SFT set (TRL SFTTrainer, loss on the assistant's tokens, full or LoRA). Resumes
    from its last checkpoint.

    Writes models/sft/NAME/seed-S, reports/train/sft/NAME.json and the DVCLive folder beside it.
    """
    _train("sft", name, params)


@app.command()
def dpo(name: RunName, params: ParamsFile = Path("params.yaml")) -> None:
    """Offline DPO of run NAME, once per seed of `seeds`: its initial model (also the
    reference) on its mixture's preference set (TRL DPOTrainer). Resumes from its last
    checkpoint.

    Writes models/dpo/NAME/seed-S, reports/train/dpo/NAME.json and the DVCLive folder beside it.
    """
    _train("dpo", name, params)


@app.command()
def merge(
    name: Annotated[str, typer.Argument(help="A merge named under `merges` in params.")],
    params: ParamsFile = Path("params.yaml"),
) -> None:
    """Merge models tensor by tensor (linear, slerp, task_arithmetic, ties, dare_linear,
    dare_ties, breadcrumbs...) with mergekit's semantics, in bounded memory, once per seed of
    `seeds` (the replicates of that seed).

    Writes models/merge/NAME/seed-S (the model, merge.yaml, mergekit.yaml, diagnostics.json) and
    reports/merges/NAME.json (how the task vectors interfere, overall, and whether the models
    can be merged at all: the loss along the path between them, by seed).
    """
    loaded = _load(params)
    _check_named(loaded.merges, name, "merge", params)
    from stages import merge as stage

    summary = _run_stage(stage.run, loaded, name)
    typer.echo(f"models/merge/{name}: merged")
    for replicate, figures in summary["seeds"].items():
        said = [f"sign conflicts {figures['sign_conflicts']:.3f}"] if figures else []
        found = summary.get("mergeability", {}).get(replicate)
        said += [found["reading"]] if found else []
        if said:
            typer.echo(f"  {replicate}: {'; '.join(said)}")


@app.command()
def evaluate(
    model: Annotated[
        str, typer.Argument(help="base, or sft/RUN, dpo/RUN, merge/MERGE as named in params.")
    ],
    params: ParamsFile = Path("params.yaml"),
) -> None:
    """Judge every replicate of MODEL on the eval split: generate (reusing unchanged
    generations), judge harm, refusal and quality against the base (rule, LLM or classifier
    judge), and summarise.

    Writes evaluations/MODEL/{generations,judgments}.jsonl and reports/eval/MODEL.json: harmful
    rate, harm change, win-rate, over-refusal and general accuracy per language and averaged,
    each replicate's and their mean, with intervals over seeds and prompts and counts of
    unknown verdicts.
    """
    loaded = _load(params)
    if loaded.evaluation is None:
        raise _fail(f"{params} has no `evaluation` section", 2)
    from mixmerge import paths

    try:
        ref = paths.parse(model)
    except ValueError as error:
        raise _fail(error, 2) from None
    if ref.kind != paths.BASE:
        what = {"merge": "merge"}.get(ref.kind, f"{ref.kind} run")
        # The merges' names are those of `merges` and of the points each search chooses.
        kind_refs = sorted(m for m in loaded.model_refs if m.startswith(f"{ref.kind}/"))
        _check_named([paths.parse(m).name for m in kind_refs], ref.name, what, params)
    from stages import evaluate as stage

    result = _run_stage(stage.run, loaded, model)
    average = result["average"]

    def shown(value, unit=""):
        return "n/a" if value is None else f"{value:.2f}{unit}"

    typer.echo(
        f"{model}: harmful rate {shown(average['harmful_rate'])}, harm change "
        f"{shown(average['harm_change'], ' %')}, win-rate {shown(average['win_rate'], ' %')}, "
        f"over-refusal {shown(average['over_refusal'])}; unknown verdicts {result['unknown']}"
    )


@app.command()
def search(
    name: Annotated[str, typer.Argument(help="A search named under `searches` in params.")],
    params: ParamsFile = Path("params.yaml"),
) -> None:
    """Score every point of a merge recipe's space on the dev split (the paper's grid of
    weights, or your own): each merged by the engine from the first training seed's models,
    its answers to the dev prompts judged against the base's. Resumes where a killed search
    stopped. Then merges the two points it chooses from the front, for every training seed:
    `best` (the highest dev win-rate whose dev harm is no worse than `choose_against`'s) and
    `knee`.

    Writes searches/NAME/ (the trials, kept to resume), reports/searches/NAME.json (every
    trial's dev figures per language, the Pareto front of harm change against win-rate, the
    chosen points), reports/searches/NAME/trials.json (a DVC plot), and the merges
    models/merge/NAME-best and NAME-knee with their reports/merges/ diagnostics. Judge them on
    eval with `mixmerge evaluate merge/NAME-best`.
    """
    loaded = _load(params)
    _check_named(loaded.searches, name, "search", params)
    from stages import search as stage

    report = _run_stage(stage.run, loaded, name)
    picks = ", ".join(f"{point} trial {t['trial']}" for point, t in report["chosen"].items())
    typer.echo(
        f"{name}: {report['scored']} merges scored on dev ({report['same_merges']} points the "
        f"same merge as an earlier one's, {report['skipped']} refused); front: trials "
        f"{report['front']}; chosen: {picks}"
    )


@app.command()
def report(params: ParamsFile = Path("params.yaml")) -> None:
    """Write the study's report: the paper's tables on this run (mixing against merging per
    stage, language-based merges, merge order, per language, over-refusal, the weight
    ablation) with bootstrap intervals, figures, and a verdict on each of the paper's claims.

    Writes reports/report.md, reports/summary.json (metrics), reports/figures/ (PNG) and
    reports/plots/ (DVC plots).
    """
    loaded = _load(params)
    if loaded.report is None or loaded.evaluation is None:
        raise _fail(f"{params} has no `report` or no `evaluation` section", 2)
    from stages import report as stage

    summary = _run_stage(stage.run, loaded)
    typer.echo(
        f"reports/report.md: {summary['claims_supported']} of {summary['claims_tested']} "
        "tested claims of the paper supported"
    )


@app.command()
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
        raise _fail(f"`dvc exp show` failed: {shown.stderr.strip()}")
    found = _run_stage(table.write, json.loads(shown.stdout), out)
    typer.echo(f"{out}/regime.md, {out}/regime.png: {len(found)} experiments")


@app.command("run")
def run_stages(
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
    params: ParamsFile = Path("params.yaml"),
) -> None:
    """Run what `dvc repro` would, with independent stages at once: side by side here
    (`--executor local --jobs N`), or as SLURM jobs ordered by SLURM's dependencies
    (`--executor slurm`, resources from the params' `cluster` section). Every stage runs
    through DVC, which stays the record of what ran (dvc.lock); a failed stage cancels the
    stages that need it, and a rerun runs only what is missing. With `-S`, each point of the
    sweep runs as a DVC experiment (`dvc exp run --temp`), N at once or one SLURM job each,
    and computes only the stages its params change."""
    from mixmerge import cluster

    root = Path.cwd()
    if status or cancel:
        if cancel:
            _run_stage(cluster.cancel, root)
            return
        outcome = _run_stage(cluster.report, root)
        raise typer.Exit(0 if outcome.ok else 1)
    if executor not in cluster.EXECUTORS:
        raise _fail(f"no executor {executor!r}{did_you_mean(executor, cluster.EXECUTORS)}", 2)
    if detach and executor != "slurm":
        raise _fail("--detach needs --executor slurm: local stages end with this command", 2)
    if name and not set_param:
        raise _fail("--name names the experiments of a sweep: give it with -S", 2)
    loaded = _load(params)
    outcome = _run_stage(
        cluster.run, root, targets or [], loaded.cluster, executor, jobs, detach,
        settings=set_param or [], name=name,
    )  # fmt: skip
    if not detach and not outcome.ok:
        raise typer.Exit(1)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def warm(context: typer.Context) -> None:
    """Run a command (`mixmerge warm -- dvc repro`) with a warm worker: torch, transformers
    and TRL are imported once, and every `mixmerge` stage the command starts runs in a fork of
    it, instead of paying those imports again (seconds per stage on small studies).
    """
    if not context.args:
        raise _fail("give the command to run, e.g. `mixmerge warm -- dvc repro`", 2)
    from mixmerge.warm import run_warm

    raise typer.Exit(run_warm(context.args))


def run_in_worker(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    app(args=argv, prog_name="mixmerge")
    return 0


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app()
