"""Merge wall time and peak memory: the `merge` stage against `mergekit-yaml`, and the I/O floor.

A random base of 0.85B parameters (a Llama shape, bf16, in shards of about 1 GB with an index)
and three models fine-tuned-like from it (the base plus small random deltas, rounded to bf16,
so that their task vectors tie by the thousand as real bf16 ones do) are written once, as a
study's models folder. Each contender runs in its own process under `/usr/bin/time`, so that
its wall time and peak RSS are its own:

- `io_floor`: read every tensor of the four inputs and write one model's worth, no arithmetic,
  through the engine's own reads and writes (`engine.write_model`, on as many threads);
- `ours`: the `merge` stage's own code path (`stages.merge.run`, with params made for it): a
  TIES merge of the three (weight 0.5, density 0.5) from the base, diagnostics on;
- `ours_no_diagnostics`: the same with the merge's `diagnostics: false`;
- `mergekit`: `mergekit-yaml` on the mergekit.yaml the stage exported.

The bounds: `ours` within 3 × the floor's wall time and 1.5 GB of peak RSS. It also counts the
entries where ours and mergekit's outputs differ (ties at TIES's cutoff, see
mixmerge/merging/selection.py).

    python benchmarks/merge_memory.py [--work DIR] [--keep]

Needs about 10 GB of free disk in DIR (default: a temporary folder, removed afterwards unless
`--keep`; a DIR given is kept, and models already in it are reused) and mergekit 0.1.5 (a
test dependency). Prints a table and writes reports/benchmarks/merge_memory.json.
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
TUNED = ("a", "b", "c")
MERGE = "bench"
WALL_BOUND, RSS_BOUND_MB = 3.0, 1536
NO_TOKENIZER = ["--no-copy-tokenizer"]  # the random models have none


def shapes() -> dict[str, tuple[int, ...]]:
    c = LLAMA_1B
    head = c["hidden_size"] // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * head
    found = {"model.embed_tokens.weight": (c["vocab_size"], c["hidden_size"])}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}"
        found |= {
            f"{p}.self_attn.q_proj.weight": (c["hidden_size"], c["hidden_size"]),
            f"{p}.self_attn.k_proj.weight": (kv, c["hidden_size"]),
            f"{p}.self_attn.v_proj.weight": (kv, c["hidden_size"]),
            f"{p}.self_attn.o_proj.weight": (c["hidden_size"], c["hidden_size"]),
            f"{p}.mlp.gate_proj.weight": (c["intermediate_size"], c["hidden_size"]),
            f"{p}.mlp.up_proj.weight": (c["intermediate_size"], c["hidden_size"]),
            f"{p}.mlp.down_proj.weight": (c["hidden_size"], c["intermediate_size"]),
            f"{p}.input_layernorm.weight": (c["hidden_size"],),
            f"{p}.post_attention_layernorm.weight": (c["hidden_size"],),
        }
    found["model.norm.weight"] = (c["hidden_size"],)
    found["lm_head.weight"] = (c["vocab_size"], c["hidden_size"])
    return found


def write_models(root: Path) -> None:
    """The base (random, std 0.02) and the fine-tuned-like models (base + N(0, 0.001)), bf16,
    tensor by tensor, each in shards of about 1 GB with an index, as the study keeps them."""
    import torch
    from safetensors.torch import save_file

    from mixmerge import paths

    folders = [paths.folder("base", 0, root)]
    folders += [paths.folder(f"sft/{name}", 0, root) for name in TUNED]
    generator = torch.Generator().manual_seed(0)
    shards = [[{}] for _ in folders]
    for name, shape in shapes().items():
        base = 0.02 * torch.randn(shape, generator=generator)
        for i, model in enumerate(shards):
            delta = 0.001 * torch.randn(shape, generator=generator) if i else 0
            model[-1][name] = (base + delta).to(torch.bfloat16)
            if sum(t.numel() * 2 for t in model[-1].values()) >= SHARD_BYTES:
                model.append({})
    total = sum(2 * math.prod(shape) for shape in shapes().values())
    for folder, model in zip(folders, shards, strict=True):
        folder.mkdir(parents=True)
        model = [shard for shard in model if shard]
        weight_map = {}
        for i, shard in enumerate(model, start=1):
            file = f"model-{i:05d}-of-{len(model):05d}.safetensors"
            save_file(shard, folder / file, metadata={"format": "pt"})
            weight_map |= dict.fromkeys(shard, file)
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
        (folder / "config.json").write_text(json.dumps(LLAMA_1B))


def params(diagnostics: bool):
    """Params declaring the three models as SFT runs and the TIES merge of them."""
    from study import merge_study

    merge = {
        "method": "ties",
        "stage": "sft",
        "base": "base",
        "models": [{"model": f"sft/{name}"} for name in TUNED],
        "parameters": {"weight": 0.5, "density": 0.5},
        "diagnostics": diagnostics,
    }
    return merge_study(TUNED, {MERGE: merge})


def io_floor(root: Path) -> None:
    """Read every tensor of every input; write one model's worth of tensors; nothing else."""
    from mixmerge import paths
    from mixmerge.merging import engine
    from mixmerge.merging.weights import read_weights

    refs = ["base", *(f"sft/{name}" for name in TUNED)]
    inputs = [read_weights(paths.folder(ref, 0, root)) for ref in refs]
    out = root / "out_floor"
    out.mkdir()
    template = inputs[0]

    def parts_of(name: str) -> list:
        for weights in inputs[1:]:
            weights.tensors[name].read()
        return [template.tensors[name].read()]

    entries = [(n, t.dtype, t.shape) for n, t in template.tensors.items()]
    engine.write_model(out, entries, parts_of, SHARD_BYTES)  # as the merge writes, threads too


def ours(root: Path) -> None:
    from mixmerge.stages import merge

    merge.run(params(diagnostics=True), MERGE, root, max_shard_bytes=SHARD_BYTES)


def ours_no_diagnostics(root: Path) -> None:
    from mixmerge.stages import merge

    merge.run(params(diagnostics=False), MERGE, root, max_shard_bytes=SHARD_BYTES)


def timed(command: list[str], cwd: Path | None = None) -> dict:
    subprocess.run(["sync"], check=True)  # no contender pays for another's writes
    finished = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True, cwd=cwd
    )
    if finished.returncode:
        sys.exit(f"{command} failed:\n{finished.stderr}")
    seconds, kilobytes = finished.stderr.strip().splitlines()[-1].split()
    return {"seconds": float(seconds), "peak_rss_mb": round(int(kilobytes) / 1024)}


def agreement(ours_folder: Path, theirs_folder: Path) -> dict:
    """Entries where the two merged models differ, and by how much at most."""
    from mixmerge.merging.weights import read_weights

    mine, theirs = read_weights(ours_folder), read_weights(theirs_folder)
    different, largest, entries = 0, 0.0, 0
    for name, tensor in mine.tensors.items():
        a, b = tensor.read().float(), theirs.tensors[name].read().float()
        different += int((a != b).sum())
        largest = max(largest, float((a - b).abs().max()))
        entries += a.numel()
    return {"share_of_entries_different": different / entries, "max_abs_difference": largest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", help="folder for the models (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the models afterwards")
    parser.add_argument("--out", default="reports/benchmarks/merge_memory.json")
    contenders = {"io_floor": io_floor, "ours_no_diagnostics": ours_no_diagnostics, "ours": ours}
    parser.add_argument("--contender", choices=contenders, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.contender:  # one measured run, in its own process
        contenders[options.contender](Path(options.root))
        return
    work = Path(options.work or tempfile.mkdtemp(prefix="merge-bench-"))
    if not (work / "models").exists():
        write_models(work)
    merged = work / "models" / "merge" / MERGE
    results = {}
    for name in contenders:
        for stale in (work / "out_floor", merged, work / "reports"):
            shutil.rmtree(stale, ignore_errors=True)
        command = [sys.executable, __file__, "--contender", name, "--root", str(work)]
        results[name] = timed(command)
    config = work / "mergekit.yaml"  # paths in it are relative to the study's root
    shutil.copyfile(merged / "seed-0" / "mergekit.yaml", config)
    shutil.rmtree(work / "out_mergekit", ignore_errors=True)
    mergekit = Path(sys.executable).with_name("mergekit-yaml")
    results["mergekit"] = timed(
        [str(mergekit), str(config), "out_mergekit", "--no-write-model-card", *NO_TOKENIZER],
        cwd=work,
    )
    floor = results["io_floor"]["seconds"]
    print(f"{'':20} {'seconds':>8} {'× floor':>8} {'peak RSS':>9}")
    for name, r in results.items():
        print(f"{name:20} {r['seconds']:8.1f} {r['seconds'] / floor:8.2f} {r['peak_rss_mb']:6d} MB")
    on, off = results["ours"]["seconds"], results["ours_no_diagnostics"]["seconds"]
    summary = {
        "models": f"base + {len(TUNED)} × 0.85B bf16 (Llama shape), TIES density 0.5",
        "results": results,
        "ours_over_floor": round(on / floor, 2),
        "within_bounds": on <= WALL_BOUND * floor
        and results["ours"]["peak_rss_mb"] <= RSS_BOUND_MB,
        "diagnostics_share_of_wall_time": round((on - off) / on, 3),
        "ours_against_mergekit": agreement(merged / "seed-0", work / "out_mergekit"),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=2))
    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    if not options.keep and not options.work:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
