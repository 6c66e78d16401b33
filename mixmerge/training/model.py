"""Model directories: building the builtin base, resolving a hub model, converting a GGUF file,
and checking a directory before anyone trains on it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mixmerge.core.errors import StageError


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
    check_chat_template(tokenizer, path)
    config = json.loads(config_file.read_text())
    embeddings = config.get("vocab_size") or config.get("text_config", {}).get("vocab_size")
    if embeddings is not None and len(tokenizer) > embeddings:
        raise StageError(
            f"{path}: the tokenizer has {len(tokenizer)} tokens but the model embeds only "
            f"{embeddings}: they do not belong together"
        )


# A conversation every chat template must render: SFT trains on what follows the prompt.
PROBE = [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "5"}]


def check_chat_template(tokenizer, path: Path) -> None:
    """Fail with a message naming `path` unless its chat template renders a one-turn
    conversation, and the prompt alone, with the answer after the prompt: SFT's loss is on
    the tokens after the prompt (TRL's prompt-completion form), so no `{% generation %}`
    markers are needed, but a template must render both. It may add a system prompt."""
    if not tokenizer.chat_template:
        raise StageError(
            f"{path}: the tokenizer has no chat template; SFT, DPO and generation need one"
        )
    if tokenizer.eos_token is None:
        raise StageError(f"{path}: the tokenizer has no end-of-sequence token to end a turn with")
    try:
        prompt = tokenizer.apply_chat_template(
            PROBE[:1], tokenize=False, add_generation_prompt=True
        )
        full = tokenizer.apply_chat_template(PROBE, tokenize=False)
    except Exception as error:  # jinja raises its own types, and templates raise_exception()
        raise StageError(
            f"{path}: its chat template cannot render a user turn and an assistant turn: {error}"
        ) from None
    if PROBE[1]["content"] not in full[len(os.path.commonprefix([prompt, full])) :]:
        raise StageError(
            f"{path}: its chat template does not put the assistant's answer after the prompt "
            f"(prompt {prompt!r}, conversation {full!r}): SFT could not find the answer to train on"
        )


def convert_gguf(file: Path, out: Path, dtype: str) -> None:
    """A safetensors model folder in `out` from a llama.cpp GGUF file: its tokenizer and chat
    template, its config, and its weights dequantised to `dtype`.

    transformers loads a GGUF file as a model that refuses `save_pretrained`, so the model is
    rebuilt from its config (without the GGUF quantisation entry) and its state dict.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not file.is_file():
        raise StageError(f"base.path: no GGUF file at {file}")
    check_gguf(file)
    tokenizer = AutoTokenizer.from_pretrained(file.parent, gguf_file=file.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        file.parent, gguf_file=file.name, dtype=torch.float32
    )
    config = loaded.config
    del config.quantization_config
    config.dtype = dtype
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def check_gguf(file: Path) -> None:
    """Refuse, with what is supported, a GGUF file whose architecture transformers cannot map
    or whose tensors are in a quantisation the gguf library cannot dequantise."""
    from gguf import GGMLQuantizationType, GGUFReader
    from gguf.quants import _type_traits as dequantisable  # the table `dequantize` reads
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    try:
        reader = GGUFReader(file)
    except Exception as error:  # the reader raises ValueError, struct.error, IndexError...
        raise StageError(f"{file}: not a readable GGUF file: {error}") from None
    field = reader.fields.get("general.architecture")
    architecture = field.contents() if field is not None else None
    supported = [a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer")]
    # llama.cpp spells some names without the underscore transformers puts in (qwen2moe)
    spellings = {a.replace("_", "") for a in supported}
    if str(architecture).replace("-", "").replace("_", "") not in spellings:
        raise StageError(
            f"{file}: GGUF architecture {architecture!r} cannot be converted "
            f"(transformers maps {', '.join(sorted(supported))})"
        )
    plain = {GGMLQuantizationType.F32, GGMLQuantizationType.F16}
    unsupported = sorted(
        {t.tensor_type.name for t in reader.tensors} - {q.name for q in plain | set(dequantisable)}
    )
    if unsupported:
        raise StageError(
            f"{file}: tensors quantised as {', '.join(unsupported)} cannot be dequantised by the "
            "gguf library; convert the model from another quantisation"
        )
