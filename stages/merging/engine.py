"""The merge engine: tensor by tensor, from (sharded) safetensors inputs to sharded safetensors.

Each output tensor is computed from the same-named tensor of every input and written straight
into its shard, whose header is computed beforehand from the inputs' shapes: memory holds about
one tensor per input, in its own dtype, never a whole model. Tensors are read with plain file
reads (a memory map would count every page of every input as the process's memory), and the
float32 arithmetic runs in chunks. Models are matched by tensor name only, so any architecture
merges, Cohere without QK-norm included.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from stages.core.errors import StageError
from stages.merging import methods
from stages.merging.parameters import depth, resolve
from stages.merging.registry import Method

SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}  # fmt: skip
FLOATS = ("F64", "F32", "BF16", "F16")
BYTES = {name: torch.empty(0, dtype=d).element_size() for name, d in SAFETENSORS_DTYPES.items()}


@dataclass(frozen=True)
class Tensor:
    """Where a tensor's bytes are, and what they hold."""

    file: Path
    start: int  # absolute byte offset in the file
    dtype: str
    shape: tuple[int, ...]

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    def read(self) -> torch.Tensor:
        data = torch.empty(self.count * BYTES[self.dtype], dtype=torch.uint8)
        with self.file.open("rb") as file:
            file.seek(self.start)
            file.readinto(memoryview(data.numpy()))
        return data.view(SAFETENSORS_DTYPES[self.dtype]).reshape(self.shape)


@dataclass(frozen=True)
class Weights:
    """A model folder's tensors (from its safetensors headers) and its config."""

    folder: Path
    tensors: dict[str, Tensor]
    config: dict

    @property
    def layers(self) -> int:
        config = self.config.get("text_config", self.config)
        return int(config.get("num_hidden_layers", 1))


def inspect(folder: Path) -> Weights:
    """Read a model folder's safetensors headers (the shards its index names, if any)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted({folder / f for f in json.loads(index.read_text())["weight_map"].values()})
    else:
        shards = sorted(folder.glob("*.safetensors"))
    tensors = {}
    for file in shards:
        with file.open("rb") as stream:
            (length,) = struct.unpack("<Q", stream.read(8))
            header = json.loads(stream.read(length))
        for name, entry in header.items():
            if name != "__metadata__":
                start = 8 + length + entry["data_offsets"][0]
                tensors[name] = Tensor(file, start, entry["dtype"], tuple(entry["shape"]))
    if not tensors:
        raise StageError(f"{folder} has no safetensors weights")
    return Weights(folder, tensors, json.loads((folder / "config.json").read_text()))


def check_compatible(models: dict[str, Weights]) -> None:
    """Refuse, before anything is written, models that cannot be merged tensor by tensor."""
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


def merge_tensor(
    job: Job, name: str, tensors: Sequence[torch.Tensor], base: torch.Tensor | None
) -> Iterator[torch.Tensor]:
    """The merged tensor, flat, in float32 chunks. Whole-tensor decisions (which entries to
    keep, SLERP's angle) are made first; the arithmetic then runs chunk by chunk."""
    t = depth(name, job.template.layers)
    flats = [tensor.reshape(-1) for tensor in tensors]
    parts = methods.chunks(flats[0].numel())
    if job.method.computation == "linear":
        weights = [_setting(job, i, "weight", name, t) for i in range(len(flats))]
        normalize = _setting(job, None, "normalize", name, t)
        for part in parts:
            yield methods.linear([f[part].float() for f in flats], weights, normalize)
        return
    if job.method.computation == "slerp":
        a, b = methods.slerp_coefficients(_setting(job, None, "t", name, t), *flats)
        for part in parts:
            yield a * flats[0][part].float() + b * flats[1][part].float()
        return
    flat_base = base.reshape(-1)
    keep, factors = [], []
    for i, flat in enumerate(flats):
        magnitudes = flat.to(torch.float32, copy=True).sub_(flat_base).abs_()  # one copy
        density = _setting(job, i, "density", name, t)
        gamma = _setting(job, i, "gamma", name, t)
        generator = _generator(job.seed, name, i)
        mask = methods.keep_mask(job.method, magnitudes, density, gamma, generator)
        rescale = mask is not None and _setting(job, None, "rescale", name, t)
        keep.append(mask)
        factors.append(methods.l1_factor(magnitudes, mask) if rescale else 1.0)
        del magnitudes
    weights = [_setting(job, i, "weight", name, t) for i in range(len(flats))]
    for part in parts:
        chunk_base = flat_base[part].float()
        thinned = []
        for flat, mask, factor in zip(flats, keep, factors, strict=True):
            delta = flat[part].to(torch.float32, copy=True).sub_(chunk_base)
            if mask is not None:
                delta.mul_(mask[part])
            if factor != 1.0:
                delta.mul_(factor)
            thinned.append(delta)
        yield methods.combine(
            chunk_base,
            thinned,
            weights,
            job.method.sign_consensus,
            bool(_setting(job, None, "normalize", name, t)),
            _setting(job, None, "lambda", name, t),
        )


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


def write_shard(
    path: Path, entries: Sequence[tuple[str, str, tuple]], tensors: Iterator[Iterator[torch.Tensor]]
) -> None:
    """A safetensors file whose header is known before its tensors are: each tensor comes as
    chunks (row-major order), written as they are computed."""
    header, offset = {}, 0
    for name, dtype, shape in entries:
        size = BYTES[dtype] * math.prod(shape)
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    header["__metadata__"] = {"format": "pt"}
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    with path.open("wb") as file:
        file.write(struct.pack("<Q", len(encoded)))
        file.write(encoded)
        for (_, dtype, _), chunks in zip(entries, tensors, strict=True):
            for chunk in chunks:
                data = chunk.to(SAFETENSORS_DTYPES[dtype]).contiguous().reshape(-1)
                file.write(data.view(torch.uint8).numpy().tobytes())


Observer = Callable[[str, Sequence[torch.Tensor], torch.Tensor | None], None]


def run(
    job: Job,
    out: Path,
    max_shard_bytes: int = 5 * 10**9,
    observe: Observer | None = None,
    reference: Weights | None = None,
) -> None:
    """Merge into `out` (an existing, empty folder): shards, and an index when several.
    `observe(name, tensors, origin)` sees every tensor's inputs and the same tensor of
    `reference` (default: the base), in their own dtypes, for diagnostics."""
    preflight(job)
    template = job.template
    names = list(template.tensors)
    floating = {n for n in names if template.tensors[n].dtype in FLOATS}
    dtypes = {
        n: (job.out_dtype if job.out_dtype and n in floating else template.tensors[n].dtype)
        for n in names
    }
    sizes = {n: BYTES[dtypes[n]] * template.tensors[n].count for n in names}
    shards = _shards(names, sizes, max_shard_bytes)
    if len(shards) == 1:
        files = ["model.safetensors"]
    else:
        files = [
            f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)
        ]

    def computed(shard: list[str]) -> Iterator[Iterator[torch.Tensor]]:
        for name in shard:
            if name not in floating:  # integer buffers are copied, not merged
                yield iter([template.tensors[name].read()])
                continue
            tensors = [w.tensors[name].read() for w in job.inputs]
            base = job.base.tensors[name].read() if job.base else None
            if observe:
                origin = reference.tensors[name].read() if reference else base
                observe(name, tensors, origin)
            yield merge_tensor(job, name, tensors, base)

    for file, shard in zip(files, shards, strict=True):
        entries = [(n, dtypes[n], template.tensors[n].shape) for n in shard]
        write_shard(out / file, entries, computed(shard))
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": sum(sizes.values())},
            "weight_map": {n: f for f, shard in zip(files, shards, strict=True) for n in shard},
        }
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
