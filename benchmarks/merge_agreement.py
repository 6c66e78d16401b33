"""How far merges agree with mergekit 0.1.5 on real bf16 weights, with its sorts as they are and
made stable.

SmolLM2-135M-Instruct (the GGUF `make smollm2` fetches, dequantised to bf16) is the base; two
fine-tunes of it are trained here in full (AdamW, learning rate 2e-4, a few steps on two
different halves of this repository's README, kept in bf16 as a real checkpoint is), so that
their task vectors are a real optimiser's, bf16-rounded, and tie by the thousand. Each method
with a cutoff (TIES, Breadcrumbs with TIES, SCE) and task arithmetic (no cutoff: the control)
merges the two through the merge stage's code path, and mergekit merges the mergekit.yaml it
exported, once as it is and once with `torch.sort`, `torch.argsort` and `torch.topk` made
stable. Printed and written to reports/benchmarks/merge_agreement.json: per method, the share
of entries that differ and the largest difference, each way.

    python benchmarks/merge_agreement.py [--work DIR] [--steps N]

Takes about 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMOLLM2 = REPO / "downloads" / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
TUNED = ("general", "safety")
MERGES = {
    "task_arithmetic": {"parameters": {"weight": 0.5}},
    "ties": {"parameters": {"weight": 0.5, "density": 0.5}},
    "breadcrumbs_ties": {"parameters": {"weight": 0.5, "density": 0.5, "gamma": 0.01}},
    "sce": {"parameters": {"select_topk": 0.5}},
}


def fine_tune(base: Path, out: Path, text: str, steps: int) -> None:
    """A full fine-tune of `base` on `text` (batches of 4 windows of 64 tokens), in bf16."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    tokens = tokenizer(text, return_tensors="pt").input_ids[0]
    windows = tokens[: len(tokens) // 64 * 64].reshape(-1, 64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    for step in range(steps):
        batch = windows[torch.randint(len(windows), (4,))]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        print(f"  {out.parent.name} step {step + 1}: loss {loss.item():.3f}", flush=True)
    model.to(torch.bfloat16).save_pretrained(out)
    tokenizer.save_pretrained(out)


def stable_topk(argsort, values, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    """`torch.topk` with equal values in flat order, the earlier first (SCE's selection)."""
    indices = argsort(values, dim=dim, descending=largest, stable=True).narrow(dim, 0, k)
    return values.gather(dim, indices), indices


def params():
    """Params declaring the two fine-tunes as SFT runs and a merge of them by each method."""
    from study import merge_study

    merges = {
        name: {
            "method": name,
            "stage": "sft",
            "base": "base",
            "models": [{"model": f"sft/{tuned}"} for tuned in TUNED],
            "diagnostics": False,
        }
        | spec
        for name, spec in MERGES.items()
    }
    return merge_study(TUNED, merges, mergeability={"enabled": False})


def mergekit(root: Path, name: str, out: Path) -> None:
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    config = yaml.safe_load((root / f"models/merge/{name}/seed-0/mergekit.yaml").read_text())
    config["base_model"] = str(root / config["base_model"])
    config["models"] = [m | {"model": str(root / m["model"])} for m in config["models"]]
    options = MergeOptions(copy_tokenizer=False, write_model_card=False, quiet=True)
    run_merge(MergeConfiguration.model_validate(config), str(out), options=options)


def differences(ours: Path, theirs: Path) -> dict:
    from mixmerge.merging.weights import read_weights

    mine, others = read_weights(ours), read_weights(theirs)
    different = entries = 0
    largest = 0.0
    for name, tensor in mine.tensors.items():
        a, b = tensor.read().float(), others.tensors[name].read().float()
        different += int((a != b).sum())
        largest = max(largest, float((a - b).abs().max()))
        entries += a.numel()
    return {"share_different": round(different / entries, 6), "max_abs_difference": largest}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", help="folder for the models (default: a temporary one)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", default="reports/benchmarks/merge_agreement.json")
    options = parser.parse_args()
    from mixmerge.stages import merge as merge_stage

    from mixmerge import paths
    from mixmerge.training.model import convert_gguf

    root = Path(options.work or tempfile.mkdtemp(prefix="merge-agreement-"))
    base = paths.folder("base", 0, root)
    if not base.is_dir():
        base.parent.mkdir(parents=True)
        convert_gguf(SMOLLM2, base, "bfloat16")
    text = (REPO / "README.md").read_text(encoding="utf-8")
    halves = dict(zip(TUNED, (text[: len(text) // 2], text[len(text) // 2 :]), strict=True))
    for name in TUNED:
        folder = paths.folder(f"sft/{name}", 0, root)
        if not folder.is_dir():
            folder.parent.mkdir(parents=True)
            fine_tune(base, folder, halves[name], options.steps)
    study = params()
    sort, argsort, topk = torch.sort, torch.argsort, torch.topk
    results = {}
    for name in MERGES:
        shutil.rmtree(root / "models" / "merge" / name, ignore_errors=True)
        merge_stage.run(study, name, root)
        ours = root / "models" / "merge" / name / "seed-0"
        found = {}
        for sorts in ("unstable", "stable"):
            out = root / f"mergekit-{name}-{sorts}"
            shutil.rmtree(out, ignore_errors=True)
            if sorts == "stable":
                torch.sort = partial(sort, stable=True)
                torch.argsort = partial(argsort, stable=True)
                torch.topk = partial(stable_topk, argsort)
            try:
                mergekit(root, name, out)
            finally:
                torch.sort, torch.argsort, torch.topk = sort, argsort, topk
            found[f"mergekit_{sorts}"] = differences(ours, out)
        results[name] = found
        print(name, json.dumps(found), flush=True)
    summary = {
        "models": f"SmolLM2-135M-Instruct (bf16) and two full fine-tunes of {options.steps} steps",
        "methods": results,
    }
    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    if not options.work:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
