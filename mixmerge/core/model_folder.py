"""The files of a Hugging Face model folder, as the stages link, copy and check them."""

from __future__ import annotations

from pathlib import Path

from mixmerge.core.io import atomic_path

# What a model folder needs: config, weights, tokenizer, chat template. A hub repository may
# also hold pickled or original-format weights, which are left out.
MODEL_FILES = ("*.json", "*.safetensors", "*.jinja", "*.model", "*.txt", "*.tiktoken")
# A model's own files beside its weights, as transformers saves them: config, generation
# settings, tokenizer, chat template. A folder may hold others (an adapter's config, a merge's
# diagnostics, a trainer's state) that are not the model's: a merge copies none of them, since
# a loader that knows PEFT would take a stray adapter_config.json for the merged model's.
COMPANION_FILES = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "vocab.txt",
    "*.model", "*.tiktoken", "chat_template.jinja", "chat_template.json",
)  # fmt: skip


def model_files(folder: Path) -> list[Path]:
    return sorted({file for pattern in MODEL_FILES for file in folder.glob(pattern)})


def companion_files(folder: Path) -> list[Path]:
    """A model folder's own files beside its weights (`COMPANION_FILES`)."""
    return sorted({file for pattern in COMPANION_FILES for file in folder.glob(pattern)})


def link_model(source: Path, out: Path) -> None:
    """`out` as a folder of links to the model files of `source`, which is not copied."""
    with atomic_path(out) as folder:
        folder.mkdir()
        for file in model_files(source):
            (folder / file.name).symlink_to(file.resolve())
