"""The merge engine: tensor by tensor, from (sharded) safetensors inputs to sharded safetensors.

Each output tensor is computed from the same-named tensor of every input and written straight
into its shard, at the place the shard's header (computed beforehand from the inputs' shapes)
gives it: memory holds about one tensor per input, in its own dtype, for each of the
`WORKERS` tensors merged at a time, never a whole model. Tensors are read with plain file reads
(a memory map would count every page of every input as the process's memory), and the float32
arithmetic runs in parts that fit in a core's cache. Models are matched by tensor name only, so
any architecture merges, Cohere without QK-norm included.

Every input is checked against its header before anything is merged (`inspect`): a truncated or
corrupt file is refused, naming the file and the tensor, not merged into garbage.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from pathlib import Path

import torch

from mixmerge.core.errors import StageError
from mixmerge.merging import methods
from mixmerge.merging.parameters import depth, resolve
from mixmerge.merging.registry import Method

SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}  # fmt: skip
FLOATS = ("F64", "F32", "BF16", "F16")
BYTES = {name: torch.empty(0, dtype=d).element_size() for name, d in SAFETENSORS_DTYPES.items()}
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
MAX_HEADER = 100 * 2**20  # the safetensors format's own limit on a header's length


@dataclass(frozen=True)
class TensorBytes:
    """Where a tensor's bytes are in a safetensors file, and what they hold."""

    name: str
    file: Path
    start: int  # absolute byte offset in the file
    dtype: str
    shape: tuple[int, ...]

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def size(self) -> int:
        return self.count * BYTES[self.dtype]

    def read(self, into: torch.Tensor | None = None) -> torch.Tensor:
        """The tensor, read into `into` (bytes: a flat uint8 tensor of `size`) if given."""
        data = torch.empty(self.size, dtype=torch.uint8) if into is None else into
        view, filled = memoryview(data.numpy()), 0
        with self.file.open("rb") as file:
            file.seek(self.start)
            while filled < self.size:
                got = file.readinto(view[filled:])
                if not got:
                    raise StageError(
                        f"{self.file}: tensor {self.name} is cut short ({filled} of its "
                        f"{self.size} bytes are in the file): the file was truncated or "
                        "replaced after it was checked"
                    )
                filled += got
        return data.view(SAFETENSORS_DTYPES[self.dtype]).reshape(self.shape)


def read_header(file: Path) -> dict[str, TensorBytes]:
    """A safetensors file's tensors, from its header, each checked against the file: a sane
    header length, JSON, known dtypes, and every tensor's bytes inside the data section, as
    many as its dtype and shape need, overlapping no other tensor's."""

    def refuse(why: str) -> StageError:
        return StageError(f"{file} is not a valid safetensors file: {why}")

    size = file.stat().st_size
    with file.open("rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise refuse(f"it is {size} bytes long, too short for a header")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER or 8 + length > size:
            raise refuse(f"its header claims {length} bytes, and the file has {size}")
        raw = stream.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise refuse(f"its header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise refuse("its header is not a JSON object")
    data = size - 8 - length  # bytes in the data section
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        problem = _entry_problem(entry, data)
        if problem:
            raise refuse(f"tensor {name}: {problem}")
        offset = 8 + length + entry["data_offsets"][0]
        tensors[name] = TensorBytes(name, file, offset, entry["dtype"], tuple(entry["shape"]))
    spans = sorted(tensors.values(), key=lambda t: (t.start, t.size))
    for first, second in pairwise(spans):
        if second.start < first.start + first.size:
            raise refuse(f"tensors {first.name} and {second.name} overlap")
    return tensors


def _entry_problem(entry, data: int) -> str | None:
    """What is wrong with a header entry, given the data section's length, if anything."""
    if not isinstance(entry, dict):
        return "its entry is not a JSON object"
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in SAFETENSORS_DTYPES:
        return f"dtype {dtype!r} is not one of {', '.join(SAFETENSORS_DTYPES)}"
    if not isinstance(shape, list) or not all(_natural(n) for n in shape):
        return f"shape {shape!r} is not a list of sizes"
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_natural, offsets)):
        return f"data_offsets {offsets!r} are not two byte offsets"
    start, end = offsets
    if not start <= end <= data:
        return f"its bytes {start}..{end} are not inside the {data} bytes of data in the file"
    needed = BYTES[dtype] * math.prod(shape)
    if end - start != needed:
        return f"it has {end - start} bytes, and {dtype} × {shape} needs {needed}"
    return None


def _natural(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class Weights:
    """A model folder's tensors (from its safetensors headers) and its config."""

    folder: Path
    tensors: dict[str, TensorBytes]
    config: dict

    @property
    def layers(self) -> int:
        config = self.config.get("text_config", self.config)
        return int(config.get("num_hidden_layers", 1))

    @property
    def float_dtype(self) -> str:
        """The dtype of most of its floating entries (a safetensors name; F32 when none)."""
        counts = {"F32": 0}
        for tensor in self.tensors.values():
            if tensor.dtype in FLOATS:
                counts[tensor.dtype] = counts.get(tensor.dtype, 0) + tensor.count
        return max(counts, key=counts.get)


def weight_files(folder: Path) -> dict[str, set[str] | None]:
    """A model folder's weight files, as transformers loads them: the shards its index names,
    each with the tensors the index puts there, or else `model.safetensors` alone (None: all
    of its tensors). Any other safetensors file (an adapter's, a stray copy) is not read."""
    index = folder / INDEX
    if not index.is_file():
        if (folder / SINGLE).is_file():
            return {SINGLE: None}
        found = sorted(p.name for p in folder.glob("*.safetensors"))
        if len(found) > 1:
            raise StageError(
                f"{folder} has several safetensors files ({', '.join(found)}) and no {INDEX} "
                "to say which are the model's shards"
            )
        if found:
            raise StageError(f"{folder} has no {SINGLE} (only {found[0]}) and no {INDEX}")
        raise StageError(f"{folder} has no safetensors weights")
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise StageError(f"{index} is not a safetensors index ({error!r})") from None
    if not isinstance(weight_map, dict) or not all(
        isinstance(shard, str) and Path(shard).name == shard for shard in weight_map.values()
    ):
        raise StageError(f"{index}: weight_map must map tensor names to shard file names")
    shards: dict[str, set[str] | None] = {}
    for name, shard in weight_map.items():
        shards.setdefault(shard, set()).add(name)
    return dict(sorted(shards.items()))


def inspect(folder: Path) -> Weights:
    """Read and check a model folder's safetensors headers (see `weight_files`, `read_header`)
    and its config, reading no tensor."""
    tensors = {}
    for shard, named in weight_files(folder).items():
        file = folder / shard
        if not file.is_file():
            raise StageError(f"{folder / INDEX} names shard {shard}, which is not in {folder}")
        found = read_header(file)
        if named is not None:
            absent, unnamed = sorted(named - found.keys()), sorted(found.keys() - named)
            if absent:
                raise StageError(
                    f"{folder / INDEX} puts tensor {absent[0]} in {shard}, which does not "
                    f"have it ({len(absent)} such)"
                )
            if unnamed:
                raise StageError(
                    f"{file} has tensor {unnamed[0]}, which {folder / INDEX} does not put "
                    f"there ({len(unnamed)} such)"
                )
        tensors |= found
    if not tensors:
        raise StageError(f"{folder} has no safetensors weights")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StageError(f"{folder}/config.json cannot be read ({error})") from None
    return Weights(folder, tensors, config)


def check_compatible(models: dict[str, Weights]) -> None:
    """Refuse, before anything is written, models that cannot be merged tensor by tensor. The
    first model is compared with each other in the dict's order, so that the message names the
    same pair on every run."""
    (first_name, first), *others = models.items()
    for name, other in others:
        for key in ("architectures", "model_type", "vocab_size"):
            if first.config.get(key) != other.config.get(key):
                raise StageError(
                    f"cannot merge {first_name} and {name}: their {key} differ "
                    f"({first.config.get(key)} and {other.config.get(key)})"
                )
        missing = sorted(set(first.tensors) ^ set(other.tensors))
        if missing:
            owner = first_name if missing[0] in first.tensors else name
            raise StageError(f"tensor {missing[0]} is in {owner} only ({len(missing)} such)")
        for tensor, entry in first.tensors.items():
            if other.tensors[tensor].shape != entry.shape:
                raise StageError(
                    f"tensor {tensor} has shape {list(entry.shape)} in {first_name} "
                    f"but {list(other.tensors[tensor].shape)} in {name}"
                )


@dataclass(frozen=True)
class Job:
    """One merge, resolved: the method, the inputs with their own settings, the merge's.

    For SLERP the inputs are its two ends, from t = 0 to t = 1, and `base` is None: only
    task-vector methods subtract a base.
    """

    method: Method
    inputs: Sequence[Weights]
    model_settings: Sequence[dict]  # per input: weight, density, gamma (absent = not set)
    merge_settings: dict  # t, lambda, normalize, rescale, and defaults for the models'
    base: Weights | None
    seed: int | str  # any key: a replicate's is its merge's seed and its training seed
    out_dtype: str | None  # a safetensors dtype name; None keeps each tensor's

    @property
    def template(self) -> Weights:
        """The model whose tensor names, order and dtypes the output takes."""
        return self.base or self.inputs[0]


def _setting(job: Job, index: int | None, key: str, name: str, t: float):
    parameters = job.method.model_parameters if index is not None else job.method.merge_parameters
    own = job.model_settings[index].get(key) if index is not None else None
    return resolve(name, t, [own, job.merge_settings.get(key)], parameters.get(key))


def _generator(seed: int | str, name: str, index: int) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}:{name}:{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def preflight(job: Job) -> None:
    """Resolve every tensor's parameters before anything is computed: a gradient of weights
    that sums to zero at some depth is refused now, not halfway through the merge."""
    for name in job.template.tensors:
        t = depth(name, job.template.layers)
        if job.method.computation == "slerp" or not _setting(job, None, "normalize", name, t):
            continue
        weights = [_setting(job, i, "weight", name, t) for i in range(len(job.inputs))]
        if abs(sum(weights)) < 1e-12:
            raise StageError(
                f"the weights of tensor {name} sum to zero, and the merge divides by it"
            )


# Sees, part by part, a tensor's task vectors from the reference: the part's flat start, and
# the differences (float32, a row per input).
PartObserver = Callable[[int, torch.Tensor], None]


def stacked(entries: Sequence[TensorBytes]) -> torch.Tensor:
    """The inputs' same-named tensors, flat, a row each, read straight into one buffer (as
    float32 when their dtypes differ)."""
    dtypes = {entry.dtype for entry in entries}
    if len(dtypes) > 1:
        return torch.stack([entry.read().reshape(-1).float() for entry in entries])
    buffer = torch.empty((len(entries), entries[0].size), dtype=torch.uint8)
    for row, entry in zip(buffer, entries, strict=True):
        entry.read(row)
    return buffer.view(SAFETENSORS_DTYPES[dtypes.pop()]).reshape(len(entries), entries[0].count)


def refuse_non_finite(entries: Sequence[TensorBytes], rows: torch.Tensor) -> None:
    """Refuse inputs (`entries`, a row of `rows` each) that hold NaN or infinite values: a
    merge would spread them into every model made from it, and top-k selection would rank
    them anywhere. Checked part by part as the tensor is merged, so that it costs no read:
    a part's sum is finite unless an entry is not (or the sum leaves float32's range, which the
    entries are then checked for), and summing is ten times faster than testing every entry."""
    for part in methods.chunks(rows.shape[1]):
        if torch.isfinite(rows[:, part].sum(dim=1, dtype=torch.float32)).all():
            continue
        finite = torch.isfinite(rows[:, part]).all(dim=1)
        if not finite.all():
            entry = entries[int((~finite).nonzero()[0])]
            raise StageError(
                f"{entry.file}: tensor {entry.name} holds NaN or infinite values, which a "
                "merge would spread into every model made from it"
            )


def merge_tensor(
    job: Job,
    name: str,
    tensors: torch.Tensor,
    base: torch.Tensor | None,
    observe: PartObserver | None = None,
    origin: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """The merged tensor, flat, in float32 parts: the method's computation in `methods`, with
    the settings it takes at this tensor, over the inputs' flat tensors (`tensors`, a row each,
    see `stacked`). `observe` sees each part's task vectors from `origin`, or, when it is None,
    from the base."""
    t = depth(name, job.template.layers)
    inputs = range(len(job.inputs))

    def each(key: str) -> list:
        return [_setting(job, i, key, name, t) for i in inputs]

    def of_merge(key: str):
        return _setting(job, None, key, name, t)

    if observe and origin is not None:  # task vectors from another model: observed apart
        flat_origin = origin.reshape(-1)
        for part in methods.chunks(tensors.shape[1]):
            rows = tensors[:, part].to(torch.float32, copy=True)
            observe(part.start, rows.sub_(flat_origin[part].to(torch.float32)))
        observe = None
    if job.method.computation == "linear":
        yield from methods.linear(tensors, each("weight"), bool(of_merge("normalize")))
    elif job.method.computation == "slerp":
        yield from methods.slerp(tensors, of_merge("t"))
    else:
        yield from methods.task_vector(
            job.method,
            tensors,
            base.reshape(-1),
            each("weight"),
            each("density"),
            each("gamma"),
            bool(of_merge("normalize")),
            bool(of_merge("rescale")),
            of_merge("lambda"),
            [_generator(job.seed, name, i) for i in inputs],
            observe,
        )


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


def header(entries: Sequence[tuple[str, str, tuple]]) -> tuple[bytes, dict[str, int]]:
    """A safetensors header for tensors (name, dtype, shape) in this order, and the byte at
    which each tensor's data starts in the file."""
    offsets, offset = {}, 0
    fields = {}
    for name, dtype, shape in entries:
        size = BYTES[dtype] * math.prod(shape)
        fields[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offsets[name] = offset
        offset += size
    fields["__metadata__"] = {"format": "pt"}
    encoded = json.dumps(fields, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    start = 8 + len(encoded)
    return struct.pack("<Q", len(encoded)) + encoded, {n: start + o for n, o in offsets.items()}


def write_parts(file: int, offset: int, dtype: str, parts: Iterable[torch.Tensor]) -> None:
    """A tensor's parts (row-major order) in `dtype`, into open file `file` from byte
    `offset` on: positioned writes, so that tensors can be written in any order."""
    for part in parts:
        data = part.to(SAFETENSORS_DTYPES[dtype]).contiguous().reshape(-1)
        view = memoryview(data.view(torch.uint8).numpy())
        while view:
            written = os.pwrite(file, view, offset)
            offset, view = offset + written, view[written:]


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
