"""Model weights as safetensors files: reading a model folder's tensors, checked against their
files before anything is merged, and writing a file's header and tensors.

Every input is checked against its header (`read_weights`): a truncated or corrupt file is
refused, naming the file and the tensor, not merged into garbage. Tensors are read with plain
file reads (a memory map would count every page of every input as the process's memory).
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import torch

from mixmerge.core.errors import StageError
from mixmerge.merging.parts import chunks

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


def read_weights(folder: Path) -> Weights:
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
    for part in chunks(rows.shape[1]):
        if torch.isfinite(rows[:, part].sum(dim=1, dtype=torch.float32)).all():
            continue
        finite = torch.isfinite(rows[:, part]).all(dim=1)
        if not finite.all():
            entry = entries[int((~finite).nonzero()[0])]
            raise StageError(
                f"{entry.file}: tensor {entry.name} holds NaN or infinite values, which a "
                "merge would spread into every model made from it"
            )


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
