"""Training mechanics on a tiny study built once per session: seconds, not minutes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mixmerge.stages import base, train
from safetensors.torch import load_file

from mixmerge.core.errors import StageError
from mixmerge.training import checkpoints
from mixmerge.validation import validate_params
from tests.conftest import REPO, TINY, inside, write


def variant(**changes) -> dict:
    """The tiny params with `changes` merged in (dotted keys)."""
    raw = json.loads(json.dumps(TINY))
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = raw
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return raw


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def mixmerge(root: Path, *arguments: str, **popen) -> subprocess.Popen:
    script = Path(sys.executable).with_name("mixmerge")
    return subprocess.Popen(
        [str(script), *arguments], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, **popen,
    )  # fmt: skip


# --- the base model -------------------------------------------------------------------------


def test_the_tiny_base_builds_without_qk_norm_and_generates(tiny_study):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mixmerge.config.evaluation import GenerationConfig
    from mixmerge.generation.hf import generate

    folder = tiny_study / "models" / "base" / "seed-0"
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert type(model).__name__ == "CohereForCausalLM"
    assert model.config.use_qk_norm is False and model.config.logit_scale == 1.0
    assert len(tokenizer) == model.config.vocab_size
    assert sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth")) == []
    prompts = ["What is 2 plus 3?", "2 और 3 का जोड़ कितना है?"]
    responses = generate(folder, prompts, GenerationConfig(max_new_tokens=8))
    assert len(responses) == 2 and all(isinstance(r, str) for r in responses)
    for phase in ("pretrain", "warmup"):
        curve = (
            tiny_study / f"reports/train/base/seed-0/{phase}/plots/metrics/loss.tsv"
        ).read_text()
        losses = [float(line.split("\t")[-1]) for line in curve.splitlines()[1:]]
        assert len(losses) > 1 and losses[-1] < losses[0], f"{phase} learns"
    assert list((tiny_study / "checkpoints" / "base" / "seed-0").iterdir()) == []


def test_sft_learns_the_builtin_answer_and_its_end_of_turn_only(tiny_study, tmp_path):
    from mixmerge.training.sft import sft_trainer

    params = validate_params(TINY)
    chat = [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]
    trainer, tokenizer, _ = sft_trainer(
        tiny_study / "models" / "base" / "seed-0", [{"messages": chat}], params.train.sft,
        params.train.runtime, tmp_path / "checkpoints", tmp_path / "logs",
    )  # fmt: skip
    (example,) = trainer.train_dataset
    ids, labels = example["input_ids"], example["labels"]
    learnt = [i for i, label in zip(ids, labels, strict=True) if label != -100]
    assert tokenizer.decode(learnt) == "Hello.<|END_OF_TURN_TOKEN|>"
    assert labels[-len(learnt) :] == learnt, "the answer is the sequence's end"
    prompt = tokenizer.apply_chat_template(chat[:1], add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>")


def test_a_hub_or_local_base_is_checked_and_linked_not_copied(study, tmp_path):
    elsewhere = tmp_path / "downloaded"
    shutil.copytree(study / "models" / "base" / "seed-0", elsewhere)
    params = validate_params(variant(seeds=[0, 1], base={"kind": "hf", "path": str(elsewhere)}))
    with inside(study):
        base.run(params)
    for seed in (0, 1):  # taken as it is, the base of every seed is the one model
        linked = study / "models" / "base" / f"seed-{seed}" / "model.safetensors"
        assert linked.is_symlink()
        assert linked.resolve() == (elsewhere / "model.safetensors").resolve()
    missing = validate_params(variant(base={"kind": "hf", "path": "no-such-org/no-such-model"}))
    with inside(study), pytest.raises(StageError, match="nor in the local hub cache"):
        base.run(missing)
    (elsewhere / "chat_template.jinja").unlink()
    with inside(study), pytest.raises(StageError, match="no chat template"):
        base.run(params)
    for weights_file in elsewhere.glob("*.safetensors"):
        weights_file.rename(weights_file.with_suffix(".bin"))
    with inside(study), pytest.raises(StageError, match="no safetensors weights"):
        base.run(params)


def write_gguf(path: Path, architecture: str, quantisation: str) -> Path:
    """A two-tensor GGUF file: an embedding in float32 and a matrix in `quantisation`."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFWriter

    writer = GGUFWriter(path, architecture)
    writer.add_name("tiny")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    quantised = GGMLQuantizationType[quantisation]
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((2, 40), dtype=np.uint8), raw_dtype=quantised)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(
    "architecture, quantisation, complaint",
    [
        ("command-r", "Q8_1", "GGUF architecture 'command-r' cannot be converted .*llama"),
        ("llama", "Q8_1", "tensors quantised as Q8_1 cannot be dequantised"),
    ],
)
def test_an_unsupported_gguf_file_is_refused_before_anything_is_written(
    study, tmp_path, architecture, quantisation, complaint
):
    file = write_gguf(tmp_path / "model.gguf", architecture, quantisation)
    params = validate_params(variant(base={"kind": "gguf", "path": str(file)}))
    shutil.rmtree(study / "models" / "base")
    with inside(study), pytest.raises(StageError, match=complaint):
        base.run(params)
    assert not (study / "models" / "base" / "seed-0").exists()


def test_a_gguf_base_must_be_a_gguf_file_and_its_warmup_needs_the_world(small_raw):
    from mixmerge.config import ParamsError

    small_raw["base"] = {"kind": "gguf", "path": "model.bin"}
    refused = r"base\.path: a GGUF base is a `\.gguf` file \(got 'model\.bin'\)"
    with pytest.raises(ParamsError, match=refused):
        validate_params(small_raw)
    small_raw["base"] = {
        "kind": "gguf", "path": "model.gguf", "warmup": {"learning_rate": 1e-4},
    }  # fmt: skip
    small_raw["data"]["sources"]["world"]["warmup"] = {"general": 0, "safety": 0}
    with pytest.raises(ParamsError, match="base.warmup. trains on the embedded world"):
        validate_params(small_raw)


def test_a_missing_gguf_file_is_named(study, tmp_path):
    params = validate_params(variant(base={"kind": "gguf", "path": str(tmp_path / "x.gguf")}))
    with inside(study), pytest.raises(StageError, match=r"base.path: no GGUF file at .*x\.gguf"):
        base.run(params)


# --- SFT and DPO ----------------------------------------------------------------------------


def test_one_sft_step_changes_the_parameters(study):
    params = validate_params(variant(**{"train.sft.max_steps": 1}))
    with inside(study):
        metrics = train.run(params, "sft", "mix15")
    before, after = (
        weights(study / "models/base/seed-0"),
        weights(study / "models/sft/mix15/seed-0"),
    )
    assert before.keys() == after.keys()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert len(changed) > len(before) // 2
    assert metrics["seed-0"]["step"] == 1 and metrics["seed-0"]["train_loss"] > 0
    assert json.loads((study / "reports/train/sft/mix15.json").read_text()) == metrics
    assert list((study / "checkpoints/sft/mix15/seed-0").iterdir()) == [], "finished runs keep none"


def test_every_seed_trains_its_own_replicate_from_its_own_base(study):
    for seed in (3, 5):  # the bases of seeds 3 and 5: here the tiny study's one
        (study / f"models/base/seed-{seed}").symlink_to("seed-0")
    params = validate_params(variant(**{"seeds": [3, 5], "train.sft.max_steps": 4}))
    with inside(study):
        metrics = train.run(params, "sft", "mix15")
        again = train.run(
            validate_params(variant(**{"seeds": [5], "train.sft.max_steps": 4})), "sft", "mix15"
        )
    assert set(metrics) == {"seed-3", "seed-5"} and set(again) == {"seed-5"}
    replicates = {seed: weights(study / f"models/sft/mix15/seed-{seed}") for seed in (5,)}
    assert not (study / "models/sft/mix15/seed-3").exists(), "a seed the study dropped is gone"
    first = load_file(study / "models/base/seed-5/model.safetensors")
    assert any(not torch.equal(first[n], replicates[5][n]) for n in first)
    assert metrics["seed-5"]["train_loss"] == again["seed-5"]["train_loss"], "a seed is a seed"
    assert metrics["seed-3"]["train_loss"] != metrics["seed-5"]["train_loss"], "seeds differ"
    curves = study / "reports/train/sft/mix15/plots/metrics"
    assert (curves / "seed-5" / "loss.tsv").is_file()


def test_lora_writes_the_adapter_beside_the_merged_full_model(study):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    lora = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}
    params = validate_params(
        variant(**{"train.runtime.lora": lora, "train.sft.learning_rate": 0.01})
    )
    with inside(study):
        train.run(params, "sft", "mix15")
    out = study / "models/sft/mix15/seed-0"
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    before, after = weights(study / "models/base/seed-0"), weights(out)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all("q_proj" in n or "v_proj" in n for n in changed)
    inputs = torch.tensor([[2, 10, 20, 30, 40]])
    merged = AutoModelForCausalLM.from_pretrained(out)
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(study / "models/base/seed-0"), out / "adapter"
    )
    with torch.no_grad():
        assert torch.allclose(merged(inputs).logits, adapted(inputs).logits, atol=1e-5)


@pytest.mark.parametrize("lora", [None, {"r": 4, "alpha": 8, "target_modules": ["q_proj"]}])
def test_dpo_moves_the_sft_model_towards_the_chosen_answers(study, lora):
    with inside(study):
        params = validate_params(variant(**{"train.dpo.learning_rate": 1.0e-3}))
        train.run(params, "sft", "mix15")
        params = validate_params(
            variant(**{"train.dpo.learning_rate": 1.0e-3, "train.runtime.lora": lora})
        )
        metrics = train.run(params, "dpo", "mix15")
    before = weights(study / "models/sft/mix15/seed-0")
    after = weights(study / "models/dpo/mix15/seed-0")
    assert any(not torch.equal(before[name], after[name]) for name in before)
    # Rewards are log-ratios to the reference, the SFT model: positive margins mean the
    # trained model prefers the chosen answers more than the SFT model did.
    assert metrics["seed-0"]["pairs_rewards/margins"] > 0
    assert metrics["seed-0"]["pairs_rewards/accuracies"] > 0.5
    assert (study / "models/dpo/mix15/seed-0/adapter").is_dir() == (lora is not None)
    plots = study / "reports/train/dpo/mix15/plots/metrics"
    assert any(plots.rglob("*.tsv")), "DVCLive logs the run"


# --- resuming -------------------------------------------------------------------------------


def kill_after_first_checkpoint(study: Path) -> None:
    """Start `sft mix15` and SIGKILL it once it has saved a checkpoint."""
    running = mixmerge(study, "sft", "mix15", start_new_session=True)
    folder = study / "checkpoints/sft/mix15/seed-0"
    deadline = time.time() + 120
    while not list(folder.glob("checkpoint-*/trainer_state.json")) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(running.pid, signal.SIGKILL)
    running.wait()


def test_a_killed_run_resumes_and_ends_where_an_uninterrupted_one_does(study, tmp_path):
    raw = variant(**{"train.sft.epochs": 3, "train.runtime.save_steps": 2})
    write(study, raw)
    twin = tmp_path / "twin"
    shutil.copytree(study, twin, symlinks=True)
    assert mixmerge(twin, "sft", "mix15").wait() == 0

    kill_after_first_checkpoint(study)
    assert not (study / "models/sft/mix15/seed-0").exists(), "a killed run leaves no model"
    # as if killed while DVCLive rewrote its summary (a requeued SLURM job once was)
    (study / "reports/train/sft/mix15/metrics.json").write_text("")
    resumed = mixmerge(study, "sft", "mix15")
    output, _ = resumed.communicate()
    assert resumed.returncode == 0, output
    assert "resuming from checkpoints/sft/mix15/seed-0/checkpoint-" in output
    expected = weights(twin / "models/sft/mix15/seed-0")
    got = weights(study / "models/sft/mix15/seed-0")
    assert all(torch.equal(expected[name], got[name]) for name in expected)


def test_a_killed_run_is_not_resumed_with_other_params(study):
    write(study, variant(**{"train.sft.epochs": 3, "train.runtime.save_steps": 2}))
    kill_after_first_checkpoint(study)
    write(study, variant(**{"train.sft.epochs": 3, "train.sft.learning_rate": 5.0e-4}))
    rerun = mixmerge(study, "sft", "mix15")
    output, _ = rerun.communicate()
    assert rerun.returncode == 0, output
    assert "resuming" not in output


def test_checkpoints_of_other_inputs_are_discarded(tmp_path):
    folder = tmp_path / "checkpoints"
    checkpoints.claim(folder, "first")
    (folder / "checkpoint-4").mkdir()
    (folder / "checkpoint-4" / "trainer_state.json").write_text("{}")
    checkpoints.claim(folder, "first")
    assert checkpoints.newest(folder) == folder / "checkpoint-4"
    checkpoints.claim(folder, "second")
    assert checkpoints.newest(folder) is None
    assert (folder / checkpoints.FINGERPRINT).read_text().strip() == "second"


# --- several processes ----------------------------------------------------------------------


def test_two_cpu_processes_train_one_model(study):
    config = REPO / "configs" / "accelerate" / "ddp-cpu-2.yaml"
    runtime = {"launcher": "accelerate", "accelerate_config": str(config), "logging_steps": 1}
    write(study, variant(**{"train.runtime": runtime}))
    finished = mixmerge(study, "sft", "mix15")
    output, _ = finished.communicate()
    assert finished.returncode == 0, output
    metrics = json.loads((study / "reports/train/sft/mix15.json").read_text())
    examples = 80  # 40 per language
    steps = metrics["seed-0"]["step"]
    assert steps == -(-examples // (2 * 8)), "two processes share each batch of steps"
    assert (study / "models/sft/mix15/seed-0/model.safetensors").is_file()
    assert not list((study / "models/sft").rglob(".*tmp*"))


# --- bad input ------------------------------------------------------------------------------


def test_a_missing_initial_model_or_mixture_says_which_stage_to_run(study):
    params = validate_params(variant())
    with inside(study):
        with pytest.raises(
            StageError, match=r"no model at models/sft/mix15/seed-0: run `dvc repro sft@mix15`"
        ):
            train.run(params, "dpo", "mix15")
        shutil.rmtree("data/mixtures/mix15")
        with pytest.raises(StageError, match=r"run `dvc repro mix@mix15` first"):
            train.run(params, "sft", "mix15")
    assert not (study / "models/sft/mix15").exists()


def test_a_tokenizer_without_chat_template_or_too_big_is_refused(study):
    params = validate_params(variant())
    folder = study / "models" / "base" / "seed-0"
    with inside(study):
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(config | {"vocab_size": 100}))
        with pytest.raises(StageError, match="600 tokens but the model embeds only 100"):
            train.run(params, "sft", "mix15")
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "chat_template.jinja").unlink()
        with pytest.raises(StageError, match="no chat template"):
            train.run(params, "sft", "mix15")
    assert not (study / "models/sft/mix15").exists()


def test_a_loss_that_becomes_nan_stops_the_run_without_output(study):
    params = validate_params(
        variant(**{"train.sft.learning_rate": 1.0e12, "train.runtime.logging_steps": 1})
    )
    with inside(study), pytest.raises(StageError, match="the training loss became nan"):
        train.run(params, "sft", "mix15")
    assert not (study / "models/sft/mix15").exists()
