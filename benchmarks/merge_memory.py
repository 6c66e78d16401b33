"""Merge wall time and peak memory: this engine against `mergekit-yaml`, and the I/O floor.

Three sharded random models of 0.85B parameters (a Llama shape, bf16) are written once: a base
and two models; both tools TIES-merge them (density 0.5). The I/O floor reads every input
tensor and writes one model's worth of output, with no arithmetic; `ours_linear` is the engine
on a linear merge of the three, without TIES's selection of the largest entries. Each contender runs
in its own process under `/usr/bin/time`, so that its peak RSS is its own.

    python benchmarks/merge_memory.py [--work DIR] [--keep]

Needs about 9 GB of free disk in DIR (default: a temporary folder) and mergekit 0.1.5 (a test
dependency). Prints a table and writes reports/benchmarks/merge_memory.json.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LLAMA_1B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 32000,
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
    "dtype": "bfloat16",
}
SHARD_BYTES = 10**9


def write_random_model(folder: Path, seed: int) -> None:
    """Random bf16 weights in Llama's tensor names, in shards of about 1 GB, with an index."""
    import torch
    from safetensors.torch import save_file

    c = LLAMA_1B
    head = c["hidden_size"] // c["num_attention_heads"]
    shapes = {"model.embed_tokens.weight": (c["vocab_size"], c["hidden_size"])}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}"
        shapes |= {
            f"{p}.self_attn.q_proj.weight": (c["hidden_size"], c["hidden_size"]),
            f"{p}.self_attn.k_proj.weight": (c["num_key_value_heads"] * head, c["hidden_size"]),
            f"{p}.self_attn.v_proj.weight": (c["num_key_value_heads"] * head, c["hidden_size"]),
            f"{p}.self_attn.o_proj.weight": (c["hidden_size"], c["hidden_size"]),
            f"{p}.mlp.gate_proj.weight": (c["intermediate_size"], c["hidden_size"]),
            f"{p}.mlp.up_proj.weight": (c["intermediate_size"], c["hidden_size"]),
            f"{p}.mlp.down_proj.weight": (c["hidden_size"], c["intermediate_size"]),
            f"{p}.input_layernorm.weight": (c["hidden_size"],),
            f"{p}.post_attention_layernorm.weight": (c["hidden_size"],),
        }
    shapes["model.norm.weight"] = (c["hidden_size"],)
    shapes["lm_head.weight"] = (c["vocab_size"], c["hidden_size"])
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(seed)
    shards, current, size = [], {}, 0
    for name, shape in shapes.items():
        current[name] = (0.02 * torch.randn(shape, generator=generator)).to(torch.bfloat16)
        size += current[name].numel() * 2
        if size >= SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
    shards.append(current)
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, folder / file, metadata={"format": "pt"})
        weight_map |= dict.fromkeys(shard, file)
    total = sum(2 * math.prod(shape) for shape in shapes.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "config.json").write_text(json.dumps(c))


def parameters(folder: str) -> int:
    index = json.loads((Path(folder) / "model.safetensors.index.json").read_text())
    return index["metadata"]["total_size"] // 2


def io_floor(models: list[str], out: str) -> None:
    """Read every tensor of every input; write one model's worth of tensors; nothing else."""
    from stages.merging import engine

    inputs = [engine.inspect(Path(m)) for m in models]
    template = inputs[0]
    out_path = Path(out)
    out_path.mkdir()

    def tensors():
        for name, tensor in template.tensors.items():
            for weights in inputs[1:]:
                weights.tensors[name].read()
            yield iter([tensor.read()])

    entries = [(n, t.dtype, t.shape) for n, t in template.tensors.items()]
    engine.write_shard(out_path / "model.safetensors", entries, tensors())


def ours(models: list[str], out: str, method: str = "ties") -> None:
    from stages.merging import engine
    from stages.merging.registry import METHODS

    base, *rest = [engine.inspect(Path(m)) for m in models]
    linear = method == "linear"
    job = engine.Job(
        method=METHODS[method],
        inputs=[base, *rest] if linear else rest,
        model_settings=[{} for _ in range(len(models) if linear else len(rest))],
        merge_settings={"weight": 0.5} | ({} if linear else {"density": 0.5}),
        base=None if linear else base,
        seed=0,
        out_dtype=None,
    )
    Path(out).mkdir()
    engine.run(job, Path(out), max_shard_bytes=SHARD_BYTES)


def ours_linear(models: list[str], out: str) -> None:
    """The engine without TIES's selection: a linear merge of the same three models."""
    ours(models, out, method="linear")


def timed(command: list[str]) -> dict:
    finished = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True, check=True
    )
    seconds, kilobytes = finished.stderr.strip().splitlines()[-1].split()
    return {"seconds": float(seconds), "peak_rss_mb": round(int(kilobytes) / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", help="folder for the models (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the models afterwards")
    parser.add_argument("--out", default="reports/benchmarks/merge_memory.json")
    contenders = {"io_floor": io_floor, "ours": ours, "ours_linear": ours_linear}
    parser.add_argument("--contender", choices=contenders, help=argparse.SUPPRESS)
    parser.add_argument("--into", help=argparse.SUPPRESS)
    parser.add_argument("models", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.contender:  # one measured run, in its own process
        contenders[options.contender](options.models, options.into)
        return
    work = Path(options.work or tempfile.mkdtemp(prefix="merge-bench-"))
    models = [str(work / name) for name in ("base", "a", "b")]
    for seed, folder in enumerate(models):
        if not Path(folder).exists():
            write_random_model(Path(folder), seed)
    config = {
        "merge_method": "ties",
        "base_model": models[0],
        "models": [{"model": m, "parameters": {"weight": 0.5, "density": 0.5}} for m in models[1:]],
        "dtype": "float32",
        "out_dtype": "bfloat16",
    }
    (work / "mergekit.yaml").write_text(json.dumps(config))
    results = {}
    for name in contenders:
        out = work / f"out_{name}"
        shutil.rmtree(out, ignore_errors=True)
        results[name] = timed(
            [sys.executable, __file__, "--contender", name, "--into", str(out), *models]
        )
    shutil.rmtree(work / "out_mergekit", ignore_errors=True)
    mergekit = Path(sys.executable).with_name("mergekit-yaml")
    results["mergekit"] = timed(
        [
            str(mergekit),
            str(work / "mergekit.yaml"),
            str(work / "out_mergekit"),
            "--no-write-model-card",
            "--no-copy-tokenizer",
        ]
    )
    floor = results["io_floor"]["seconds"]
    print(f"{'':10} {'seconds':>8} {'× floor':>8} {'peak RSS':>9}")
    for name, r in results.items():
        print(f"{name:10} {r['seconds']:8.1f} {r['seconds'] / floor:8.2f} {r['peak_rss_mb']:7d} MB")
    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "models": f"3 × {parameters(models[0]) / 1e9:.2f}B bf16 (Llama shape)",
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    if not options.keep and not options.work:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
