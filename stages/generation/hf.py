"""Generation with transformers, on a CPU or a GPU."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def generate(
    model_dir: Path,
    prompts: Sequence[str],
    batch_size: int = 64,
    max_new_tokens: int = 64,
    device: str = "cpu",
    trust_remote_code: bool = False,
) -> list[str]:
    """Greedy responses to single-turn `prompts`, in order.

    Prompts are sorted by length so that a batch pads little, and padded on the left so that
    every response starts right after its prompt.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    model = model.to(device).eval()
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    responses: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        inputs = tokenizer.apply_chat_template(
            [[{"role": "user", "content": prompts[i]}] for i in batch],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            padding=True,
            return_tensors="pt",
        ).to(device)
        with torch.no_grad():
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        texts = tokenizer.batch_decode(
            output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
        )
        for i, text in zip(batch, texts, strict=True):
            responses[i] = text.strip()
    return responses
