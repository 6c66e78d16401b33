"""Params for a benchmark's own study: models made outside training (a base, and others declared
as SFT runs of one tiny mixture, so that merges may name them) and the merges of them."""

from __future__ import annotations


def merge_study(runs: tuple[str, ...], merges: dict, **sections):
    """Validated params declaring `runs` as SFT runs from the base and `merges` over them."""
    from mixmerge.validation import validate_params

    world = {"kind": "builtin", "eval": {"general": 1}, "train": {"general": 4}}
    phase = {"learning_rate": 1.0e-3}
    return validate_params(
        {
            "languages": ["en"],
            "data": {"sources": {"w": world}},
            "mixtures": {"m": {"safety": 0.0, "size_per_language": 4}},
            "base": {"kind": "hf", "path": "models/base/seed-0"},
            "train": {"sft": phase, "dpo": phase},
            "sft": {name: {"mixture": "m", "init": "base"} for name in runs},
            "merges": merges,
            **sections,
        }
    )
