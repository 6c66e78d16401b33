"""Stages `sft@<run>` and `dpo@<run>`: one training run each, from its initial model on its
mixture (SFT set or preference set), once per training seed."""

from __future__ import annotations

from pathlib import Path

from stages.core import models
from stages.core.config import Params
from stages.core.errors import StageError
from stages.core.io import atomic_path, read_jsonl, write_json
from stages.mix import MIXTURES
from stages.training.model import check_model_dir

CHECKPOINTS = Path("checkpoints")
LOGS = Path("reports/train")
# The conversation columns each form's trainer reads; the labels stay in the files for analysis.
COLUMNS = {"sft": ("messages",), "dpo": ("prompt", "chosen", "rejected")}
FORM_FILE = {"sft": "sft.jsonl", "dpo": "preference.jsonl"}


def run(params: Params, kind: str, name: str, root: Path = Path(".")) -> dict:
    """Train every replicate of run `name` of `kind` (`sft` or `dpo`): one model per seed, each
    from the same seed's replicate of its initial model (or from the shared base). Writes the
    models and their metrics by seed."""
    spec = getattr(params, kind)[name]
    inits = {seed: models.folder(spec.init, seed, root) for seed in params.seeds}
    for init in dict.fromkeys(inits.values()):
        check_model_dir(init, models.producer(spec.init), params.trust_remote_code)
    data = root / MIXTURES / spec.mixture / FORM_FILE[kind]
    if not data.is_file():
        raise StageError(f"no {data}: run `dvc repro mix@{spec.mixture}` first")
    rows = [{column: row[column] for column in COLUMNS[kind]} for row in read_jsonl(data)]
    if kind == "sft":
        from stages.training.sft import sft as train
    else:
        from stages.training.dpo import dpo as train
    logs = root / LOGS / kind / name
    metrics = {}
    for index, seed in enumerate(params.seeds):
        replicate = models.seed_folder(seed)
        metrics[replicate] = train(
            inits[seed],
            rows,
            getattr(params.train, kind),
            params.train.runtime.model_copy(update={"seed": seed}),
            out=models.folder(f"{kind}/{name}", seed, root),
            checkpoint_dir=root / CHECKPOINTS / kind / name / replicate,
            logs=logs,
            log_prefix=f"{replicate}/",
            append_logs=index > 0,
            trust_remote_code=params.trust_remote_code,
        )
    from accelerate import PartialState

    if PartialState().is_main_process:
        models.prune(f"{kind}/{name}", params.seeds, root)
        with atomic_path(logs.with_suffix(".json")) as tmp:
            write_json(tmp, metrics)
    return metrics
