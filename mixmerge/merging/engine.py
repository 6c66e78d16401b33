"""The merge engine: tensor by tensor, from (sharded) safetensors inputs to sharded safetensors.

Each output tensor is computed from the same-named tensor of every input and written straight
into its shard, at the place the shard's header (computed beforehand from the inputs' shapes)
gives it: memory holds about one tensor per input, in its own dtype, for each of the
`WORKERS` tensors merged at a time, never a whole model. Models are matched by tensor name
only, so any architecture merges, Cohere without QK-norm included. Inputs are read and checked
in mixmerge/merging/weights.py, each tensor's parameters resolved in mixmerge/merging/plan.py,
and computed by the method's definition (mixmerge/merging/methods.py).
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import torch

from mixmerge.merging.definition import Inputs
from mixmerge.merging.parts import chunks
from mixmerge.merging.plan import Job, preflight
from mixmerge.merging.tensors import PartObserver, computed
from mixmerge.merging.weights import (
    BYTES,
    FLOATS,
    INDEX,
    Weights,
    header,
    refuse_non_finite,
    stacked,
    write_parts,
)


def merge_tensor(
    job: Job,
    name: str,
    tensors: torch.Tensor,
    base: torch.Tensor | None,
    observe: PartObserver | None = None,
    origin: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """The merged tensor, flat, in float32 parts: the method's computation, with the
    arguments it takes at this tensor, over the inputs' flat tensors (`tensors`, a row each,
    see `stacked`). `observe` sees each part's task vectors from `origin`, or, when it is None,
    from the base."""
    if observe and origin is not None:  # task vectors from another model: observed apart
        flat_origin = origin.reshape(-1)
        for part in chunks(tensors.shape[1]):
            rows = tensors[:, part].to(torch.float32, copy=True)
            observe(part.start, rows.sub_(flat_origin[part].to(torch.float32)))
        observe = None
    vectors = job.method.inputs is Inputs.TASK_VECTORS
    generators = job.generators(name) if vectors else ()
    yield from computed(job.method, tensors, base, job.arguments(name), generators, observe)


def _keep_freed_memory() -> None:
    """Have glibc's malloc reuse the memory of freed parts rather than hand it back to the
    system and fault it in again for the next part: one arena that keeps its free memory (up
    to `M_TRIM_THRESHOLD`), with whole tensors (above `M_MMAP_THRESHOLD`) mapped and unmapped
    as before. Measured on a TIES merge of 0.85B-parameter models: peak RSS 0.97 GB instead of
    1.5 GB (each merging thread's arena holds its own parts otherwise), and 5 % faster. It
    sets the process's allocator, which only the merge stage's process runs. Elsewhere than
    glibc, nothing to do."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        arena_max, trim_threshold, mmap_threshold = -8, -1, -3  # glibc's malloc.h
        mallopt(arena_max, 1)
        mallopt(trim_threshold, 2**28)
        mallopt(mmap_threshold, 2**25)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread (in each thread that calls it). A part is a few hundred
    microseconds of work: torch's threads meet after every operation, and the meeting stalls
    for a scheduler's time slice whenever another process holds a core (measured: 50 times
    slower on a shared 2-core machine). Handing parts to a pool of threads instead cost 12 %
    in the handing over; whole tensors run on threads of their own (`WORKERS`)."""
    _keep_freed_memory()
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# Tensors merged at a time, each on its own thread (running torch on one thread: see
# `one_thread`): a second core doubles the arithmetic and overlaps one tensor's reads
# with another's, and each more would hold one more tensor of every input in memory.
WORKERS = min(2, os.cpu_count() or 1)


def _shards(names: Sequence[str], sizes: dict[str, int], limit: int) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    filled = 0
    for name in names:
        if shards[-1] and filled + sizes[name] > limit:
            shards.append([])
            filled = 0
        shards[-1].append(name)
        filled += sizes[name]
    return shards


def write_model(
    out: Path,
    entries: Sequence[tuple[str, str, tuple]],
    parts_of: Callable[[str], Iterable[torch.Tensor]],
    max_shard_bytes: int,
    workers: int = WORKERS,
) -> None:
    """A model's safetensors into `out`: shards of at most `max_shard_bytes` (and an index
    when several) for tensors (name, dtype, shape) in this order, whose headers are written
    first; `parts_of(name)` gives a tensor's parts as they are computed, on `workers` threads
    that each take the next tensor when done with one (any error stops them, and is raised)."""
    sizes = {name: BYTES[dtype] * math.prod(shape) for name, dtype, shape in entries}
    shards = _shards([name for name, _, _ in entries], sizes, max_shard_bytes)
    if len(shards) == 1:
        files = ["model.safetensors"]
    else:
        files = [
            f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)
        ]
    by_name = {name: (dtype, shape) for name, dtype, shape in entries}
    with ExitStack() as opened:
        targets = {}
        for file, shard in zip(files, shards, strict=True):
            head, offsets = header([(n, *by_name[n]) for n in shard])
            handle = opened.enter_context((out / file).open("wb"))
            handle.write(head)
            handle.flush()
            targets |= {n: (handle.fileno(), offsets[n]) for n in shard}

        def write(name: str) -> None:
            write_parts(*targets[name], by_name[name][0], parts_of(name))

        _in_turn(write, [name for name, _, _ in entries], workers)
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": sum(sizes.values())},
            "weight_map": {n: f for f, shard in zip(files, shards, strict=True) for n in shard},
        }
        (out / INDEX).write_text(json.dumps(index, indent=2) + "\n")


def _in_turn(function: Callable[[str], None], items: Sequence[str], workers: int) -> None:
    """`function(item)` for every item, on `workers` threads that each take the next item
    when done with one; the first error stops them (before their next item) and is raised."""
    pending, lock, failed = iter(items), threading.Lock(), threading.Event()

    def work() -> None:
        while not failed.is_set():
            with lock:
                item = next(pending, None)
            if item is None:
                return
            try:
                function(item)
            except BaseException:
                failed.set()
                raise

    with ThreadPoolExecutor(workers, thread_name_prefix="merge") as pool:
        futures = [pool.submit(work) for _ in range(workers)]
    for future in futures:
        future.result()


# Sees, part by part, tensor `name`'s task vectors from the reference (see `run`).
Observer = Callable[[str, int, torch.Tensor], None]


def run(
    job: Job,
    out: Path,
    max_shard_bytes: int = 5 * 10**9,
    observe: Observer | None = None,
    reference: Weights | None = None,
    workers: int = WORKERS,
) -> None:
    """Merge into `out` (an existing, empty folder): shards, and an index when several, the
    tensors merged on `workers` threads (the bytes do not depend on how many).
    `observe(name, start, deltas)` sees, part by part, every floating tensor's task vectors
    from the same tensor of `reference` (default: the base; nothing is observed without
    either), from any of the threads; from the base they are the very differences the merge
    computes."""
    preflight(job)
    template = job.template
    reference = reference or job.base
    floating = {n for n, t in template.tensors.items() if t.dtype in FLOATS}
    entries = [
        (n, job.out_dtype if job.out_dtype and n in floating else t.dtype, t.shape)
        for n, t in template.tensors.items()
    ]

    def parts_of(name: str) -> Iterable[torch.Tensor]:
        if name not in floating:  # integer buffers are copied, not merged
            return [template.tensors[name].read()]
        entries = [w.tensors[name] for w in job.inputs]
        tensors = stacked(entries)
        refuse_non_finite(entries, tensors)
        base = job.base.tensors[name].read() if job.base else None
        if base is not None:
            refuse_non_finite([job.base.tensors[name]], base.reshape(1, -1))
        if observe is None or reference is None:
            return merge_tensor(job, name, tensors, base)
        origin = None if reference is job.base else reference.tensors[name].read()
        return merge_tensor(job, name, tensors, base, partial(observe, name), origin)

    with one_thread():
        write_model(out, entries, parts_of, max_shard_bytes, workers)
