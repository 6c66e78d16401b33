"""Generations per second at batch size 1 against the configured batch size.

On the CPU: the default study's base model on its eval set (the first `--prompts` prompts, the
same for both). Where a GPU is lent: `--random-cohere` builds a random CohereForCausalLM of
about 1B parameters (the base's tokenizer, Aya's architecture without QK-norm) and times every
backend in `--backends` (hf, vllm) on it, on `--device auto`.

    python benchmarks/generation_throughput.py [--params params.yaml] [--prompts 256]
    python benchmarks/generation_throughput.py --random-cohere --device auto --backends hf,vllm

Run after `dvc repro prepare base`; prints a table and writes
reports/benchmarks/generation_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from mixmerge import paths
from mixmerge.core.io import write_json
from mixmerge.core.offline import go_offline
from mixmerge.data.prepared import read_eval_split
from mixmerge.generation import backend
from mixmerge.validation import load_params

COHERE_1B = {
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 16,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "max_position_embeddings": 2048,
    "logit_scale": 1.0,
    "use_qk_norm": False,
}


def random_cohere(tokenizer_dir: Path, out: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, CohereConfig, CohereForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = CohereConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **COHERE_1B,
    )
    torch.manual_seed(0)
    model = CohereForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    for template in tokenizer_dir.glob("*.jinja"):
        shutil.copyfile(template, out / template.name)
    return out


def timed(name: str, model: Path, prompts: list[str], settings) -> dict:
    start = time.perf_counter()
    texts = backend(name)(model, prompts, settings)
    seconds = time.perf_counter() - start
    return {
        "backend": name,
        "batch_size": settings.batch_size,
        "seconds": round(seconds, 2),
        "generations_per_s": round(len(texts) / seconds, 2),
    }


def main() -> None:
    go_offline()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--random-cohere", action="store_true")
    parser.add_argument("--device", default=None, help="cpu or auto (default: from params)")
    parser.add_argument("--backends", default="hf")
    parser.add_argument("--out", default="reports/benchmarks/generation_throughput.json")
    options = parser.parse_args()
    params = load_params(options.params)
    settings = params.evaluation.generation
    if options.device:
        settings = settings.model_copy(update={"device": options.device})
    records = read_eval_split(paths.PREPARED, params.languages)[: options.prompts]
    prompts = [r.prompt for r in records]
    with tempfile.TemporaryDirectory() as scratch:
        model = Path("models/base/seed-0")
        if options.random_cohere:
            model = random_cohere(model, Path(scratch) / "cohere-1b")
        results = []
        for name in options.backends.split(","):
            for batch_size in (1, settings.batch_size):
                one = settings.model_copy(update={"backend": name, "batch_size": batch_size})
                results.append(timed(name, model, prompts, one))
    print(f"{'backend':8} {'batch':>6} {'seconds':>8} {'gen/s':>8}")
    for r in results:
        rate = r["generations_per_s"]
        print(f"{r['backend']:8} {r['batch_size']:6d} {r['seconds']:8.1f} {rate:8.2f}")
    speedups = {}
    for name in options.backends.split(","):
        rates = {r["batch_size"]: r["generations_per_s"] for r in results if r["backend"] == name}
        speedups[name] = round(rates[settings.batch_size] / rates[1], 1)
    print("batched / batch 1:", json.dumps(speedups))
    write_json(
        Path(options.out),
        {
            "model": "random Cohere ~1B" if options.random_cohere else "default base",
            "device": settings.device,
            "prompts": len(prompts),
            "max_new_tokens": settings.max_new_tokens,
            "results": results,
            "speedup": speedups,
        },
    )


if __name__ == "__main__":
    main()
