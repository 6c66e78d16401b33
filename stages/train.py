"""Stages `sft@<run>` and `dpo@<run>`: one training run each, from its initial model on its
mixture (SFT set or preference set)."""

from __future__ import annotations

from pathlib import Path

from stages.core.config import Params
from stages.core.errors import StageError
from stages.core.io import atomic_path, read_jsonl, write_json
from stages.mix import MIXTURES
from stages.training.model import check_model_dir

MODELS = Path("models")
CHECKPOINTS = Path("checkpoints")
LOGS = Path("reports/train")
# The conversation columns each form's trainer reads; the labels stay in the files for analysis.
COLUMNS = {"sft": ("messages",), "dpo": ("prompt", "chosen", "rejected")}
FORM_FILE = {"sft": "sft.jsonl", "dpo": "preference.jsonl"}


def producer(model: str) -> str:
    """The DVC stage that writes a model reference (`sft/x` is written by `sft@x`)."""
    return "`dvc repro base`" if model == "base" else "`dvc repro {}@{}`".format(*model.split("/"))


def run(params: Params, kind: str, name: str, root: Path = Path(".")) -> dict:
    """Train run `name` of `kind` (`sft` or `dpo`) and write its model and metrics."""
    spec = getattr(params, kind)[name]
    init = root / MODELS / spec.init
    check_model_dir(init, producer(spec.init), params.trust_remote_code)
    data = root / MIXTURES / spec.mixture / FORM_FILE[kind]
    if not data.is_file():
        raise StageError(f"no {data}: run `dvc repro mix@{spec.mixture}` first")
    rows = [{column: row[column] for column in COLUMNS[kind]} for row in read_jsonl(data)]
    places = {
        "out": root / MODELS / kind / name,
        "checkpoint_dir": root / CHECKPOINTS / kind / name,
        "logs": root / LOGS / kind / name,
        "trust_remote_code": params.trust_remote_code,
    }
    if kind == "sft":
        from stages.training.sft import sft

        metrics = sft(init, rows, params.train.sft, params.train.runtime, **places)
    else:
        from stages.training.dpo import dpo

        metrics = dpo(init, rows, params.train.dpo, params.train.runtime, **places)
    from accelerate import PartialState

    if PartialState().is_main_process:
        with atomic_path(places["logs"].with_suffix(".json")) as tmp:
            write_json(tmp, metrics)
    return metrics
