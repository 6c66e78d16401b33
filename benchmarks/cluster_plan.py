"""A study on a cluster, simulated: its DAG from DVC, a time per stage derived from its params and
the throughputs stated below, and its wall time on 1, 4 and 16 eight-GPU nodes against running
every stage one after another.

    python benchmarks/cluster_plan.py [--params configs/paper-aya-expanse-8b.yaml]
                                      [--nodes 1 4 16] [--gpus-per-node 8] [--json FILE]

The DAG is the one `dvc repro` would run for those params from nothing (`mixmerge.cluster.plan`
on a copy of the repository whose params.yaml is the file given). The times are estimates for
an 8B model on H100 80 GB GPUs; change the constants to your hardware and the sizes to your
data. What each stage holds is what the params' `cluster` section asks for (where it has none:
a whole node for training, one GPU for translation, evaluations and searches); stages that hold
no GPU (API calls, data) run beside the GPU jobs, on CPU nodes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mixmerge.cluster.plan import Step, plan  # noqa: E402
from mixmerge.cluster.simulate import Cost, critical_path, simulate  # noqa: E402
from mixmerge.config.profiles import read_params, resolved_text  # noqa: E402

# --- throughputs (an 8B dense model, bf16, H100 80 GB) --------------------------------------
# Full fine-tuning with FSDP and activation checkpointing: about 25 % of the H100's 989 dense
# bf16 TFLOP/s at 6 × 8e9 FLOP per token is 5,000 tokens/s per GPU; padding to the batch's
# longest sequence and recomputed activations leave about 3,000.
SFT_TOKENS_PER_GPU_SECOND = 3_000
# A DPO pair passes chosen and rejected through the policy (forward and backward, 3 units each)
# and the frozen reference (forward, 1 unit each): 8 units against an SFT example's 3.
DPO_COST_PER_PAIR = 8 / 3
TOKENS_PER_EXAMPLE = 600  # prompt and answer: UltraFeedback's answers run to about 450 tokens
# Loading 16 GB of weights from a shared file system, sharding, and saving the gathered model.
TRAINING_OVERHEAD_SECONDS = 600
# vLLM, one GPU, batch 256, greedy: decode throughput over all sequences, and the engine's start.
GENERATION_TOKENS_PER_SECOND = 2_500
GENERATION_START_SECONDS = 120
ANSWER_TOKENS = 300  # a mean answer under `max_new_tokens` 512
# An OpenAI-compatible judge or teacher: seconds a call, calls in flight (params'
# `max_concurrency`).
API_SECONDS_PER_CALL = 4.0
# Merging 16 GB models on a shared file system: reading at 1 GB/s, writing at 0.5 GB/s.
MODEL_GB = 16.0
READ_GB_PER_SECOND, WRITE_GB_PER_SECOND = 1.0, 0.5
# MT of UltraFeedback with NLLB-200 3.3B on one GPU: tokens generated a second.
TRANSLATION_TOKENS_PER_SECOND = 2_000

# --- data sizes (the public datasets the paper profile reads) ----------------------------------
REDTEAM_PER_LANGUAGE = 930  # Aya Red-teaming: 7,419 prompts in 8 languages
DOLLY_PER_LANGUAGE = 200
XSTEST_SAFE = 250


def costs(steps: list[Step], params: dict) -> dict[str, Cost]:
    from mixmerge.validation import validate_params

    cluster = validate_params(params).cluster if "cluster" in params else None
    estimated = {}
    for step in steps:
        group = step.name.partition("@")[0]
        if cluster is not None:
            job = cluster.resources(step.name)
            nodes, gpus = job.nodes, job.gpus_per_node
        else:
            nodes, gpus = (
                1,
                {"sft": 8, "dpo": 8, "translate": 1, "search": 1}.get(
                    group, 1 if group.startswith("evaluate-") else 0
                ),
            )
        seconds = stage_seconds(step.name, params, max(1, nodes * gpus))
        estimated[step.name] = Cost(seconds, nodes, gpus)
    return estimated


def stage_seconds(stage: str, params: dict, gpus: int) -> float:
    """A stage's time: training spreads over its `gpus`; the rest uses one GPU at most."""
    group, _, key = stage.partition("@")
    seeds = len(params.get("seeds", [0]))
    languages = len(params["languages"])
    concurrency = params["evaluation"]["judge"].get("max_concurrency", 16)
    if group == "translate":
        entry = params["translations"][key]
        source = params["data"]["sources"][entry["source"]]
        texts = source.get("max_per_language", 2000) * 3  # prompt, chosen and rejected
        tokens = texts * len(entry["languages"]) * TOKENS_PER_EXAMPLE / 2
        return tokens / TRANSLATION_TOKENS_PER_SECOND
    if group == "synthesize":
        entry = params["syntheses"][key]
        seeds_used = REDTEAM_PER_LANGUAGE * languages * 0.7  # what eval and dev leave
        calls = seeds_used * (1 + entry.get("rephrase", 0)) * 3  # safe, harmful, judged
        return calls * API_SECONDS_PER_CALL / entry["safe"].get("max_concurrency", 16)
    if group in ("prepare", "mix", "report"):
        return 120
    if group == "base":
        return MODEL_GB / READ_GB_PER_SECOND * 2 + 60  # fetch and check the weights
    if group in ("sft", "dpo"):
        run = params[group][key]
        mixture = params["mixtures"][run["mixture"]]
        examples = mixture["size_per_language"] * len(mixture.get("languages", params["languages"]))
        epochs = params["train"][group].get("epochs", 1)
        units = examples * epochs * (DPO_COST_PER_PAIR if group == "dpo" else 1)
        seconds = units * TOKENS_PER_EXAMPLE / (SFT_TOKENS_PER_GPU_SECOND * gpus)
        return seeds * (seconds + TRAINING_OVERHEAD_SECONDS)
    if group == "merge":
        models = len(params["merges"][key]["models"])
        return seeds * _merge_seconds(models)
    if group.startswith("evaluate-"):
        replicates = 1 if group == "evaluate-base" else seeds
        models = 2 if group == "evaluate-chosen" else 1
        return models * replicates * _judged_seconds(_eval_prompts(languages), concurrency)
    if group == "search":
        search = params["searches"][key]
        merges = _distinct_merges(search)
        references = len(search.get("references", []))
        dev = _judged_seconds(_dev_prompts(languages), concurrency)
        trial = _merge_seconds(len(search["merge"]["models"])) + dev
        chosen = 2 * seeds * _merge_seconds(len(search["merge"]["models"]))
        return merges * trial + (references + 1) * dev + chosen
    raise ValueError(f"no estimate for {stage}")


def _eval_prompts(languages: int) -> dict[str, int]:
    return {
        "harmful": round(REDTEAM_PER_LANGUAGE * 0.2) * languages,
        "general": round(DOLLY_PER_LANGUAGE * 0.75) * languages,
        "benign": XSTEST_SAFE,
    }


def _dev_prompts(languages: int) -> dict[str, int]:
    return {
        "harmful": round(REDTEAM_PER_LANGUAGE * 0.1) * languages,
        "general": round(DOLLY_PER_LANGUAGE * 0.25) * languages,
        "benign": 0,
    }


def _judged_seconds(prompts: dict[str, int], concurrency: int) -> float:
    """Generate an answer to every prompt, then judge it: harm and refusal once, the pairwise
    comparison with the base in both orders."""
    answers = sum(prompts.values())
    generate = GENERATION_START_SECONDS + answers * ANSWER_TOKENS / GENERATION_TOKENS_PER_SECOND
    calls = prompts["harmful"] + 2 * prompts["general"] + prompts["benign"]
    return generate + calls * API_SECONDS_PER_CALL / concurrency


def _merge_seconds(models: int) -> float:
    return (models + 1) * MODEL_GB / READ_GB_PER_SECOND + MODEL_GB / WRITE_GB_PER_SECOND


def _distinct_merges(search: dict) -> int:
    """The merges a search's grid holds, each scored once (the search's own reckoning)."""
    from mixmerge.config.merges import MergeConfig
    from mixmerge.merging.recipe import canonical
    from mixmerge.merging.registry import merge_context
    from mixmerge.search.space import filled, points, slots

    found = slots(search["merge"])
    distinct = set()
    for point in points(found)[: search.get("trials", 10**9)]:
        try:
            merge = MergeConfig.model_validate(
                filled(search["merge"], found, point), context=merge_context()
            )
        except ValueError:
            continue  # a point its method refuses, (0, 0) for a weighted mean
        distinct.add(json.dumps(canonical(merge), sort_keys=True))
    return len(distinct)


def study_steps(params_file: Path) -> list[Step]:
    """The steps `dvc repro` would run from nothing with these params."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                                check=True).stdout.decode()  # fmt: skip
        for name in filter(None, listed.split("\0")):
            if name.startswith(".dvc/") or name in ("dvc.yaml", ".dvcignore"):
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, root / name)
        (root / "params.yaml").write_text(resolved_text(params_file))
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        return plan(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path,
                        default=REPO / "configs" / "paper-aya-expanse-8b.yaml")  # fmt: skip
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    params = read_params(args.params)
    given = args.params.resolve()
    shown = given.relative_to(REPO) if REPO in given.parents else args.params
    steps = study_steps(args.params)
    estimated = costs(steps, params)
    serial = sum(c.seconds for c in estimated.values())
    longest, path = critical_path(steps, estimated)
    gpu_hours = sum(c.seconds * c.nodes * c.gpus_per_node for c in estimated.values()) / 3600
    groups: dict[str, list[float]] = {}
    for stage, c in estimated.items():
        groups.setdefault(stage.partition("@")[0], []).append(c.seconds)

    print(f"{shown}: {len(steps)} stages, {gpu_hours:,.0f} GPU-hours\n")
    print(f"{'stage':<18} {'count':>5} {'hours each':>11} {'hours in all':>13}")
    for group, seconds in groups.items():
        print(f"{group:<18} {len(seconds):>5} {sum(seconds) / len(seconds) / 3600:>11.2f} "
              f"{sum(seconds) / 3600:>13.1f}")  # fmt: skip
    print(f"\none after another: {serial / 3600:.1f} h")
    print(f"critical path:     {longest / 3600:.1f} h ({' -> '.join(path)})")
    wall = {}
    for nodes in args.nodes:
        wall[nodes] = simulate(steps, estimated, nodes, args.gpus_per_node).seconds
        print(f"{nodes:>3} node{'s' if nodes > 1 else ' '} of {args.gpus_per_node} GPUs: "
              f"{wall[nodes] / 3600:6.1f} h  ({serial / wall[nodes]:.1f} × faster than one "
              "after another)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({
            "params": str(shown), "stages": len(steps), "gpu_hours": gpu_hours,
            "serial_hours": serial / 3600, "critical_path_hours": longest / 3600,
            "critical_path": path, "wall_hours": {n: s / 3600 for n, s in wall.items()},
            "stage_hours": {stage: c.seconds / 3600 for stage, c in estimated.items()},
        }, indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
