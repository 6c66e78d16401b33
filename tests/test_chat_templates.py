"""Any architecture, any chat template: SFT's loss is on the answer and DPO trains, with the
templates real models ship (a default system prompt, no system role, no pad token, tied
embeddings), on tiny Llama, Qwen2, Gemma and Cohere models built here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mixmerge.stages import train
from safetensors.torch import load_file

from mixmerge.config.training import OptimizationConfig, PreferenceOptimizationConfig, RuntimeConfig
from mixmerge.core.errors import StageError
from mixmerge.core.io import read_jsonl
from mixmerge.training.dpo import dpo, dpo_trainer
from mixmerge.training.model import check_model_dir
from mixmerge.training.sft import sft, sft_trainer
from mixmerge.validation import validate_params
from tests.conftest import TINY, inside

# SmolLM2's template: a default system prompt when the conversation has none.
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Gemma's: no system role, alternating turns, the assistant called `model`.
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant') }}"
    "{% endif %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
# architecture, template, end-of-turn token, what the template writes after an answer, pad
CASES = {
    "llama-smollm2-tied": ("llama", SMOLLM2, "<|im_end|>", "<|im_end|>\n", None),
    "qwen2-chatml-no-pad": ("qwen2", CHATML, "<|im_end|>", "<|im_end|>\n", None),
    "gemma-no-system-role": ("gemma", GEMMA, "<end_of_turn>", "<end_of_turn>\n", "<pad>"),
    "cohere-llama3": ("cohere", LLAMA3, "<|eot_id|>", "<|eot_id|>", "<pad>"),
}
PHASE = OptimizationConfig(learning_rate=1e-2, max_steps=2, batch_size=4, max_length=512)
PREFERENCE = PreferenceOptimizationConfig(
    learning_rate=1e-3, max_steps=2, batch_size=4, max_length=128
)
RUNTIME = RuntimeConfig(logging_steps=1, save_steps=100)


def tiny_model(folder: Path, architecture: str, tokenizer) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    shape = dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=architecture == "llama",
    )  # fmt: skip
    if architecture == "cohere":
        shape |= {"use_qk_norm": False, "logit_scale": 1.0}
    config = AutoConfig.for_model(architecture, **shape)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="module", params=sorted(CASES))
def model_dir(request, tiny_study, tmp_path_factory) -> tuple[Path, str]:
    """A tiny model of one architecture, with the tiny study's vocabulary and another
    template; and what its template writes after an answer."""
    from transformers import AutoTokenizer

    architecture, template, end_of_turn, after_answer, pad = CASES[request.param]
    tokenizer = AutoTokenizer.from_pretrained(tiny_study / "models" / "base" / "seed-0")
    tokenizer.add_special_tokens({"additional_special_tokens": [end_of_turn]})
    tokenizer.chat_template = template
    tokenizer.eos_token = end_of_turn
    if pad is None:
        tokenizer.pad_token = None
    else:
        tokenizer.add_special_tokens({"pad_token": pad})
    folder = tmp_path_factory.mktemp(request.param)
    tiny_model(folder, architecture, tokenizer)
    return folder, after_answer


def conversations(tiny_study: Path, form: str) -> list[dict]:
    rows = read_jsonl(tiny_study / "data/mixtures/mix15" / form)
    return rows[:8]


def test_sft_computes_the_loss_on_the_answer_only(model_dir, tiny_study, tmp_path):
    folder, after_answer = model_dir
    check_model_dir(folder, "the fixture")
    rows = [{"messages": r["messages"]} for r in conversations(tiny_study, "sft.jsonl")]
    trainer, tokenizer, _ = sft_trainer(
        folder, rows, PHASE, RUNTIME, tmp_path / "checkpoints", tmp_path / "logs"
    )
    learnt = [
        tokenizer.decode([t for t, label in zip(e["input_ids"], e["labels"], strict=True)
                          if label != -100])
        for e in trainer.train_dataset
    ]  # fmt: skip
    answers = [row["messages"][-1]["content"] for row in rows]
    assert learnt == [answer + after_answer for answer in answers]


def test_dpo_compares_the_answers_after_the_same_prompt(model_dir, tiny_study, tmp_path):
    folder, after_answer = model_dir
    rows = [
        {k: r[k] for k in ("prompt", "chosen", "rejected")}
        for r in conversations(tiny_study, "preference.jsonl")
    ]
    trainer, tokenizer, _ = dpo_trainer(
        folder, rows, PREFERENCE, RUNTIME, tmp_path / "checkpoints", tmp_path / "logs"
    )
    for example, row in zip(trainer.train_dataset, rows, strict=True):
        prompt = tokenizer.apply_chat_template(
            row["prompt"], tokenize=False, add_generation_prompt=True
        )
        assert tokenizer.decode(example["prompt_ids"]) == prompt
        for side in ("chosen", "rejected"):
            answer = row[side][-1]["content"] + after_answer
            assert tokenizer.decode(example[f"{side}_ids"]) == answer


def test_sft_and_dpo_train_every_architecture(model_dir, tiny_study, tmp_path):
    folder, _ = model_dir
    rows = [{"messages": r["messages"]} for r in conversations(tiny_study, "sft.jsonl")]
    tuned = tmp_path / "sft"
    sft(folder, rows, PHASE, RUNTIME, tuned, tmp_path / "checkpoints-sft", tmp_path / "logs")
    before, after = load_file(folder / "model.safetensors"), load_file(tuned / "model.safetensors")
    assert before.keys() == after.keys()
    assert all(not torch.equal(before[name], after[name]) for name in before)
    pairs = [
        {k: r[k] for k in ("prompt", "chosen", "rejected")}
        for r in conversations(tiny_study, "preference.jsonl")
    ]
    out = tmp_path / "dpo"
    metrics = dpo(tuned, pairs, PREFERENCE, RUNTIME, out, tmp_path / "checkpoints-dpo",
                  tmp_path / "logs-dpo")  # fmt: skip
    assert metrics["step"] == 2 and "pairs_rewards/margins" in metrics
    trained = load_file(out / "model.safetensors")
    assert any(not torch.equal(after[name], trained[name]) for name in after)


def test_a_model_without_a_pad_token_answers(tiny_study, model_dir):
    from mixmerge.config.evaluation import GenerationConfig
    from mixmerge.generation.hf import generate

    folder, _ = model_dir
    answers = generate(folder, ["What is 2 plus 3?", "Hi"], GenerationConfig(max_new_tokens=4))
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


@pytest.mark.parametrize(
    "template, complaint",
    [
        ("{{ raise_exception('only tool calls') }}", "cannot render a user turn and an assistant"),
        ("{{ messages | no_such_filter }}", "cannot render"),
        ("{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}{% endif %}"
         "{% endfor %}", "does not put the assistant's answer after the prompt"),
    ],
)  # fmt: skip
def test_a_template_that_cannot_render_a_conversation_stops_before_training(
    study, template, complaint
):
    base = study / "models" / "base" / "seed-0"
    (base / "chat_template.jinja").write_text(template)
    with inside(study), pytest.raises(StageError, match=f"models/base/seed-0: .*{complaint}"):
        train.run(validate_params(TINY), "sft", "mix15")
    assert not (study / "models" / "sft").exists()
    assert json.loads((base / "config.json").read_text())["model_type"] == "cohere"
