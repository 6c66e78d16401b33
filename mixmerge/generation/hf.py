"""Generation with transformers, on a CPU or a GPU."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mixmerge.config.evaluation import GenerationConfig
from mixmerge.core.errors import StageError

GREEDY = GenerationConfig()  # the default settings: greedy, batches of 64, 64 new tokens


def generate(
    model_dir: Path,
    prompts: Sequence[str],
    settings: GenerationConfig = GREEDY,
    trust_remote_code: bool = False,
) -> list[str]:
    """Responses to single-turn `prompts`, in order: greedy, or sampled from the seed."""
    conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
    return complete(model_dir, conversations, settings, trust_remote_code)


def complete(
    model_dir: Path,
    conversations: Sequence[list[dict]],
    settings: GenerationConfig = GREEDY,
    trust_remote_code: bool = False,
) -> list[str]:
    """The model's next turn in each conversation, through its chat template.

    Conversations are sorted by length so that a batch pads little, and padded on the left so
    that every answer starts right after its conversation.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    if tokenizer.chat_template is None:
        raise StageError(f"{model_dir} has no chat template: cannot pose prompts to it as a chat")
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = settings.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    model = model.to(device).eval()
    torch.manual_seed(settings.seed)
    sampling = (
        {"temperature": settings.temperature, "top_p": settings.top_p} if settings.do_sample else {}
    )
    order = sorted(range(len(conversations)), key=lambda i: len(str(conversations[i])))
    answers: list[str] = [""] * len(conversations)
    for start in range(0, len(order), settings.batch_size):
        batch = order[start : start + settings.batch_size]
        inputs = tokenizer.apply_chat_template(
            [conversations[i] for i in batch],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            padding=True,
            return_tensors="pt",
        ).to(device)
        with torch.no_grad():
            output = model.generate(
                **inputs,
                max_new_tokens=settings.max_new_tokens,
                do_sample=settings.do_sample,
                **sampling,
                # A chat model may end its turn with several tokens: its generation config knows.
                eos_token_id=model.generation_config.eos_token_id or tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        texts = tokenizer.batch_decode(
            output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
        )
        for i, text in zip(batch, texts, strict=True):
            answers[i] = text.strip()
    return answers
