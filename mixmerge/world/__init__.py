"""The embedded world: six languages of checkable tasks, harmful requests and benign look-alikes.

It lets the whole study run offline on a CPU with exact answers. `build_world` gives the records,
`pretraining_corpus` the base's text, and `judge` the rule judge's verdicts.
"""

from mixmerge.world.build import SPLIT_ORDER, build_world, capacity, dev_capacity
from mixmerge.world.corpus import pretraining_corpus
from mixmerge.world.packs import PACKS

LANGUAGES = tuple(PACKS)

__all__ = [
    "LANGUAGES",
    "PACKS",
    "SPLIT_ORDER",
    "build_world",
    "capacity",
    "dev_capacity",
    "pretraining_corpus",
]
