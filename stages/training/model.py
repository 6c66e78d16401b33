"""Model directories: building the builtin base, resolving a hub model, and checking a directory
before anyone trains on it."""

from __future__ import annotations

import json
from pathlib import Path

from stages.core.errors import StageError


def build_cohere(architecture, tokenizer, seed: int):
    """A freshly initialised CohereForCausalLM shaped by `architecture`, for `tokenizer`.

    No QK-norm, as in Aya's checkpoints; `logit_scale` 1.0, because Cohere's default (1/16) is
    tuned for a hidden size of thousands and keeps a tiny model from learning.
    """
    import torch
    from transformers import CohereConfig, CohereForCausalLM

    config = CohereConfig(
        vocab_size=len(tokenizer),
        hidden_size=architecture.hidden_size,
        intermediate_size=architecture.intermediate_size,
        num_hidden_layers=architecture.num_hidden_layers,
        num_attention_heads=architecture.num_attention_heads,
        num_key_value_heads=architecture.num_key_value_heads,
        max_position_embeddings=architecture.max_position_embeddings,
        use_qk_norm=False,
        logit_scale=1.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    )
    torch.manual_seed(seed)
    return CohereForCausalLM(config)


def resolve_hub_model(path: str, revision: str | None) -> Path:
    """A local directory for a hub id (from the local cache: runs are offline) or a path."""
    local = Path(path)
    if local.is_dir():
        return local
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(path, revision=revision, local_files_only=True))
    except Exception as error:  # the hub client raises several types for "not cached"
        raise StageError(
            f"base.path: {path!r} is neither a local directory nor in the local hub cache; "
            f"download it first (`hf download {path}`): {error}"
        ) from None


def check_model_dir(path: Path, produced_by: str, trust_remote_code: bool = False) -> None:
    """Fail with a clear message unless `path` is a model we can train: a config, safetensors
    weights, and a tokenizer with a chat template whose vocabulary fits the embeddings."""
    if not path.is_dir():
        raise StageError(f"no model at {path}: run {produced_by} first")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise StageError(f"{path} has no config.json: not a model directory")
    if not list(path.glob("*.safetensors")):
        raise StageError(f"{path} has no safetensors weights (only safetensors are loaded)")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as error:  # transformers raises many types for a broken tokenizer
        raise StageError(f"{path}: cannot load its tokenizer: {error}") from None
    if not tokenizer.chat_template:
        raise StageError(
            f"{path}: the tokenizer has no chat template; SFT, DPO and generation need one"
        )
    config = json.loads(config_file.read_text())
    embeddings = config.get("vocab_size") or config.get("text_config", {}).get("vocab_size")
    if embeddings is not None and len(tokenizer) > embeddings:
        raise StageError(
            f"{path}: the tokenizer has {len(tokenizer)} tokens but the model embeds only "
            f"{embeddings}: they do not belong together"
        )
