"""Stages `sft@<run>` and `dpo@<run>`: one training run each, from its initial model on its
mixture (SFT set or preference set), once per training seed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from mixmerge.stages.commands import PARAMS, ParamsFile, check_named, fail, load

from mixmerge import paths
from mixmerge.config import StudyConfig
from mixmerge.core.errors import StageError
from mixmerge.core.io import atomic_path, read_jsonl, write_json
from mixmerge.training.model import check_model_dir

# The mixture form each kind of run trains on, and the columns its trainer reads (the labels
# stay in the files for analysis).
TRAINS_ON = {"sft": "sft", "dpo": "preference"}
COLUMNS = {"sft": ("messages",), "dpo": ("prompt", "chosen", "rejected")}


def run(params: StudyConfig, kind: str, name: str, root: Path = paths.ROOT) -> dict:
    """Train every replicate of run `name` of `kind` (`sft` or `dpo`): one model per seed, each
    from the same seed's replicate of its initial model (the base or a run). Writes the models
    and their metrics by seed."""
    spec = getattr(params, kind)[name]
    ref = paths.ref(kind, name)
    inits = {seed: paths.folder(spec.init, seed, root) for seed in params.seeds}
    for init in dict.fromkeys(inits.values()):
        check_model_dir(init, paths.producer(spec.init), params.trust_remote_code)
    data = paths.mixture(spec.mixture, root) / paths.FORM_FILES[TRAINS_ON[kind]]
    if not data.is_file():
        raise StageError(f"no {data}: run `dvc repro mix@{spec.mixture}` first")
    rows = [{column: row[column] for column in COLUMNS[kind]} for row in read_jsonl(data)]
    if kind == "sft":
        from mixmerge.training.sft import sft as train
    else:
        from mixmerge.training.dpo import dpo as train
    report = paths.train_report(ref, root)
    metrics = {}
    for index, seed in enumerate(params.seeds):
        replicate = paths.seed_folder(seed)
        metrics[replicate] = train(
            inits[seed],
            rows,
            getattr(params.train, kind),
            params.train.runtime.model_copy(update={"seed": seed}),
            out=paths.folder(ref, seed, root),
            checkpoint_dir=paths.checkpoints(ref, root) / replicate,
            logs=report.with_suffix(""),
            log_prefix=f"{replicate}/",
            append_logs=index > 0,
            trust_remote_code=params.trust_remote_code,
        )
    from accelerate import PartialState

    if PartialState().is_main_process:
        paths.prune(ref, params.seeds, root)
        with atomic_path(report) as tmp:
            write_json(tmp, metrics)
    return metrics


def outputs(stage: str) -> list[Path]:
    """What `sft@<name>` or `dpo@<name>` writes: its outs, metrics and plots, as dvc.yaml
    declares them."""
    ref = stage.replace("@", "/")
    return [paths.MODELS / ref, paths.train_report(ref), paths.training_curves(ref)]


# --- the command -----------------------------------------------------------------------------


RunName = Annotated[str, typer.Argument(help="A run named under `sft` or `dpo` in params.")]


def _train(kind: str, name: str, params: Path) -> None:
    loaded = load(params)
    check_named(getattr(loaded, kind), name, f"{kind} run", params)
    from mixmerge.training.launch import relaunch

    try:
        if relaunch(loaded.train.runtime, [kind, name, "--params", str(params)]):
            return
        metrics = run(loaded, kind, name)
    except StageError as error:
        raise fail(error) from None
    losses = ", ".join(
        f"{replicate} {figures.get('train_loss', float('nan')):.4f}"
        for replicate, figures in metrics.items()
    )
    typer.echo(f"models/{kind}/{name}: trained, loss {losses}")


def sft(name: RunName, params: ParamsFile = PARAMS) -> None:
    """Supervised fine-tuning of run NAME, once per seed of `seeds`: its initial model on its
    mixture's SFT set (TRL SFTTrainer, loss on the assistant's tokens, full or LoRA). Resumes
    from its last checkpoint.

    Writes models/sft/NAME/seed-S, reports/train/sft/NAME.json and the DVCLive folder beside it.
    """
    _train("sft", name, params)


def dpo(name: RunName, params: ParamsFile = PARAMS) -> None:
    """Offline DPO of run NAME, once per seed of `seeds`: its initial model (also the
    reference) on its mixture's preference set (TRL DPOTrainer). Resumes from its last
    checkpoint.

    Writes models/dpo/NAME/seed-S, reports/train/dpo/NAME.json and the DVCLive folder beside it.
    """
    _train("dpo", name, params)


COMMANDS = {"sft": sft, "dpo": dpo}
