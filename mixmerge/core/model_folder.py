"""The files of a Hugging Face model folder, as the stages link, copy and check them."""

from __future__ import annotations

from pathlib import Path

from mixmerge.core.io import atomic_path

# What a model folder needs: config, weights, tokenizer, chat template. A hub repository may
# also hold pickled or original-format weights, which are left out.
MODEL_FILES = ("*.json", "*.safetensors", "*.jinja", "*.model", "*.txt", "*.tiktoken")
# Those a merge writes itself; the others it copies from an input.
WEIGHT_FILES = ("*.safetensors", "model.safetensors.index.json")


def model_files(folder: Path) -> list[Path]:
    return sorted({file for pattern in MODEL_FILES for file in folder.glob(pattern)})


def companion_files(folder: Path) -> list[Path]:
    """A model folder's files beside its weights."""
    return [
        file
        for file in model_files(folder)
        if not any(file.match(pattern) for pattern in WEIGHT_FILES)
    ]


def link_model(source: Path, out: Path) -> None:
    """`out` as a folder of links to the model files of `source`, which is not copied."""
    with atomic_path(out) as folder:
        folder.mkdir()
        for file in model_files(source):
            (folder / file.name).symlink_to(file.resolve())
