"""The study's base model, which every run starts from: the builtin one (`builtin_base`), a
hub model or local folder linked in place, or a GGUF file converted to safetensors; a real
model is first warmed up on the embedded world's warm-up split when params ask.

Like the paper's base, the result follows instructions and is not safety-tuned: the warm-up
answers harmful requests compliantly.
"""

from __future__ import annotations

from pathlib import Path

from mixmerge import paths
from mixmerge.config.base_model import BaseModelConfig, BuiltinBaseConfig, GgufBaseConfig
from mixmerge.config.training import OptimizationConfig, RuntimeConfig
from mixmerge.core.errors import StageError
from mixmerge.core.fingerprint import fingerprint
from mixmerge.core.io import atomic_path
from mixmerge.core.model_folder import link_model
from mixmerge.inputs import local_files
from mixmerge.training import checkpoints
from mixmerge.training.builtin_base import build_builtin_base, conversations, stamp_of
from mixmerge.training.model import check_model_dir, convert_gguf, resolve_hub_model
from mixmerge.training.sft import sft


def base_files(config: BaseModelConfig | None, root: Path = paths.ROOT) -> list[Path]:
    """The files params name for the base (`config`, params' `base`): a GGUF file, or a local
    model folder's; none for the builtin base or a hub id."""
    if config is None or config.kind == "builtin":
        return []
    return local_files(config.path, root)


def build_base(
    base: BaseModelConfig,
    runtime: RuntimeConfig,
    prepared: Path,
    out: Path,
    work: Path,
    logs: Path,
    trust_remote_code: bool = False,
) -> dict:
    """The base model in `out`, its resumable state in `work`; its training metrics."""
    if isinstance(base, BuiltinBaseConfig):
        return build_builtin_base(base, runtime, prepared, out, work, logs)
    work.mkdir(parents=True, exist_ok=True)
    metrics = {"source": base.path}
    if isinstance(base, GgufBaseConfig) and base.warmup is None:
        with atomic_path(out) as folder:
            convert_gguf(Path(base.path), folder, base.dtype)
            check_model_dir(folder, "the base stage")
        return metrics
    if isinstance(base, GgufBaseConfig):
        source = converted_gguf(Path(base.path), base.dtype, work / "converted")
    else:
        source = resolve_hub_model(base.path, base.revision)
    check_model_dir(source, "`hf download` for it", trust_remote_code)
    if base.warmup is None:
        link_model(source, out)
    else:
        metrics["warmup"] = warm_up_base(
            source, base.warmup, runtime, prepared, out, work, logs, trust_remote_code
        )
    return metrics


def converted_gguf(file: Path, dtype: str, out: Path) -> Path:
    """`out`, holding the GGUF file converted to a safetensors folder; kept while the file and
    dtype are the same, so that a killed warm-up does not convert it again."""
    stamp = fingerprint({"dtype": dtype}, file)
    if stamp_of(out) != stamp:
        with atomic_path(out) as folder:
            convert_gguf(file, folder, dtype)
            (folder / checkpoints.FINGERPRINT).write_text(stamp)
    return out


def warm_up_base(
    source: Path,
    warmup: OptimizationConfig,
    runtime: RuntimeConfig,
    prepared: Path,
    out: Path,
    work: Path,
    logs: Path,
    trust_remote_code: bool = False,
) -> dict:
    """A real model fine-tuned on the world's warm-up split into `out`, as the builtin base is
    after pretraining: it then answers the world's requests, harmful ones compliantly, so that
    the study has a harm to cut. LoRA, when the runtime has it, and merged into `out`."""
    warmup_rows = conversations(prepared, "warmup")
    if not warmup_rows:
        raise StageError(
            f"base.warmup: {prepared / 'warmup'} holds no warm-up conversations; give the "
            "builtin data source `warmup` sizes and run `dvc repro prepare`"
        )
    metrics = sft(
        source, warmup_rows, warmup, runtime, out, work / "warmup", logs / "warmup",
        trust_remote_code=trust_remote_code,
    )  # fmt: skip
    checkpoints.clear(work)
    return metrics
