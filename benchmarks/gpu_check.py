"""The SmolLM2 profile on one GPU: SFT, DPO and evaluation, with both generation backends.

Runs the stages of `configs/smollm2-135m.yaml` (base from the GGUF file `make smollm2`
fetches) in a scratch folder, on the GPU in bf16 and at the default study's data sizes (the
world's splits, mixtures of 250 examples per language): the base's warm-up, `sft@mix15`,
`dpo@mix15`, `evaluate-base` and `evaluate-sft@mix15` with the `hf` backend, then generation
alone on the eval prompts with `hf` and with `vllm`. It measures SFT's tokens per second and
its model FLOPs utilisation (MFU: 6 × parameters × tokens per second over the GPU's dense bf16
peak, as PaLM defines it, without the attention term), DPO's pairs per second, and each
backend's generated tokens per second.

    python benchmarks/gpu_check.py [--work DIR] [--peak-tflops N]

Needs a CUDA GPU (its peak is looked up by name, or given with --peak-tflops) and, for the
vllm backend, `pip install -e '.[vllm]'` (without it, that row says so). Meant to take at most
10 minutes on one H100-class GPU. Prints a table and writes reports/benchmarks/gpu_check.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "configs" / "smollm2-135m.yaml"
# Dense bf16 peaks (no sparsity), in TFLOPS, from the vendors' data sheets.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def gpu_params(profile: dict) -> dict:
    """The profile on a GPU, at the default study's data sizes."""
    default = yaml.safe_load((REPO / "params.yaml").read_text())
    params = json.loads(json.dumps(profile))
    params["data"]["sources"]["world"] |= {
        key: default["data"]["sources"]["world"][key] for key in ("eval", "warmup", "train")
    }
    params["mixtures"] = {"mix15": {"safety": 0.15, "size_per_language": 250}}
    params["base"]["path"] = str(REPO / profile["base"]["path"])
    params["base"]["warmup"] |= {"max_steps": 100, "batch_size": 32}
    params["train"]["runtime"] |= {"device": "auto", "precision": "bf16", "logging_steps": 10}
    params["train"]["sft"] |= {"epochs": 1, "batch_size": 32}
    params["train"]["dpo"] |= {"max_steps": 50, "batch_size": 16, "judged_pairs": 256}
    params["sft"] = {"mix15": {"mixture": "mix15", "init": "base"}}
    params["dpo"] = {"mix15": {"mixture": "mix15", "init": "sft/mix15"}}
    params["merges"] = {}
    params["evaluation"]["generation"] |= {
        "device": "auto", "batch_size": 256, "max_new_tokens": 128,
    }  # fmt: skip
    params.pop("report", None)
    return params


def peak_flops(name: str, given: float | None) -> float | None:
    if given:
        return given * 1e12
    found = [tflops for key, tflops in PEAK_TFLOPS.items() if key in name]
    return found[0] * 1e12 if found else None


def timed(function, *arguments):
    started = time.perf_counter()
    result = function(*arguments)
    return result, time.perf_counter() - started


def generation_speed(backend: str, model_dir: Path, prompts: list[str], settings) -> dict:
    """Generated tokens per second of one backend on the eval prompts, model load included."""
    from transformers import AutoTokenizer

    from mixmerge.core.errors import StageError
    from mixmerge.generation import backend as generation_backend

    try:
        texts, seconds = timed(generation_backend(backend), model_dir, prompts, settings)
    except StageError as error:  # vLLM not installed
        return {"backend": backend, "skipped": str(error)}
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokens = sum(len(tokenizer(text)["input_ids"]) for text in texts)
    return {
        "backend": backend,
        "prompts": len(prompts),
        "seconds": round(seconds, 1),
        "new_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1),
    }


def model_parameters(folder: Path) -> int:
    """Parameters stored in a model folder (tied embeddings once)."""
    from safetensors import safe_open

    count = 0
    for file in folder.glob("*.safetensors"):
        with safe_open(file, "pt") as weights:
            names = weights.keys()  # the handle itself is not iterable
            count += sum(math.prod(weights.get_slice(name).get_shape()) for name in names)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "reports/benchmarks/gpu_check.json")
    options = parser.parse_args()

    from mixmerge.core.offline import go_offline

    go_offline()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: this check is for a machine with one")
    from mixmerge.config.profiles import read_params

    gguf = REPO / read_params(PROFILE)["base"]["path"]
    if not gguf.is_file():
        raise SystemExit(f"no {gguf}: run `make smollm2` first")

    from mixmerge.stages import base, evaluate, mix, prepare, train

    from mixmerge.core.io import write_json
    from mixmerge.validation import validate_params

    work = options.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    raw = gpu_params(read_params(PROFILE))
    (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = validate_params(raw)
    device = torch.cuda.get_device_name()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    previous = Path.cwd()
    os.chdir(work)
    try:
        prepare.run(params)
        mix.run(params, "mix15")
        _, seconds["base"] = timed(base.run, params)
        sft, seconds["sft"] = timed(train.run, params, "sft", "mix15")
        dpo, seconds["dpo"] = timed(train.run, params, "dpo", "mix15")
        # A model's win-rate is against the base's answers: the base is evaluated first.
        _, seconds["evaluate_base"] = timed(evaluate.run, params, "base")
        _, seconds["evaluate_hf"] = timed(evaluate.run, params, "sft/mix15")
        tuned = Path("models/sft/mix15/seed-0")
        prompts = [r.prompt for r in evaluate.eval_records(Path("."), params.languages)]
        settings = params.evaluation.generation
        speeds = [generation_speed(b, tuned, prompts, settings) for b in ("hf", "vllm")]
        evaluation = json.loads(Path("reports/eval/sft/mix15.json").read_text())["average"]
    finally:
        os.chdir(previous)

    run = sft["seed-0"]
    parameters = model_parameters(work / "models/base/seed-0")
    tokens_per_second = run["num_tokens"] / run["train_runtime"]
    peak = peak_flops(device, options.peak_tflops)
    results = {
        "device": device,
        "parameters": parameters,
        "seconds": {k: round(v, 1) for k, v in seconds.items()}
        | {"total": round(time.perf_counter() - started, 1)},
        "sft": {
            "steps": run["step"],
            "tokens": int(run["num_tokens"]),
            "train_seconds": round(run["train_runtime"], 1),
            "tokens_per_second": round(tokens_per_second, 1),
            "mfu": round(6 * parameters * tokens_per_second / peak, 4) if peak else None,
            "peak_tflops": peak / 1e12 if peak else None,
        },
        "dpo": {
            "steps": dpo["seed-0"]["step"],
            "pairs_per_second": round(
                dpo["seed-0"]["step"]
                * params.train.dpo.batch_size
                / dpo["seed-0"]["train_runtime"],
                2,
            ),
            "pairs_rewards/accuracies": dpo["seed-0"].get("pairs_rewards/accuracies"),
        },
        "generation": speeds,
        "evaluation": {k: evaluation[k] for k in ("harmful_rate", "general_accuracy")},
    }
    write_json(options.out, results)
    print(f"{device}: {results['seconds']['total']:.0f} s in all")
    print(f"SFT  {tokens_per_second:10.0f} tokens/s   MFU {results['sft']['mfu']}")
    print(f"DPO  {results['dpo']['pairs_per_second']:10.2f} pairs/s")
    for speed in speeds:
        if "skipped" in speed:
            print(f"generation {speed['backend']:5} skipped: {speed['skipped']}")
        else:
            print(f"generation {speed['backend']:5} {speed['tokens_per_second']:10.0f} tokens/s")
    if options.work is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
