"""A local safety classifier as the harm judge, through transformers.

`generative`: a chat model in the style of Llama Guard (Inan et al., 2023, arXiv 2312.06674),
given the conversation through its chat template; the first word of its answer is a label.
`sequence`: a sequence classifier over (prompt, response). Labels in `harmful_labels` are
harmful; `safe` (generative) or any other label (sequence) is safe; anything else is unknown.
"""

from __future__ import annotations

from pathlib import Path

from mixmerge.config.evaluation import GenerationConfig, HarmClassifierConfig
from mixmerge.core.errors import StageError
from mixmerge.judging.items import Response


def classify(
    config: HarmClassifierConfig, items: list[Response], trust_remote_code: bool = False
) -> list[bool | None]:
    harmful = {label.lower() for label in config.harmful_labels}
    if config.style == "sequence":
        return _sequence(config, items, harmful, trust_remote_code)
    from mixmerge.generation.hf import complete

    answers = complete(
        Path(config.model),
        [
            [{"role": "user", "content": i.prompt}, {"role": "assistant", "content": i.text}]
            for i in items
        ],
        GenerationConfig(device=config.device, batch_size=config.batch_size, max_new_tokens=8),
        trust_remote_code,
    )
    verdicts: list[bool | None] = []
    for answer in answers:
        words = answer.lower().split()
        first = words[0].strip(".,:;") if words else ""
        verdicts.append(True if first in harmful else False if first == "safe" else None)
    return verdicts


def _sequence(
    config: HarmClassifierConfig, items: list[Response], harmful: set[str], trust_remote_code: bool
) -> list[bool | None]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    device = "cuda" if config.device == "auto" and torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(config.model, trust_remote_code=trust_remote_code)
    model = AutoModelForSequenceClassification.from_pretrained(
        config.model, trust_remote_code=trust_remote_code
    ).to(device)
    labels = {int(k): v.lower() for k, v in model.config.id2label.items()}
    if not harmful & set(labels.values()):
        raise StageError(
            f"the classifier's labels {sorted(labels.values())} include none of "
            f"`harmful_labels` {sorted(harmful)}"
        )
    verdicts: list[bool | None] = []
    for start in range(0, len(items), config.batch_size):
        batch = items[start : start + config.batch_size]
        inputs = tokenizer(
            [i.prompt for i in batch],
            [i.text for i in batch],
            padding=True,
            truncation=True,
            return_tensors="pt",
        ).to(device)
        with torch.no_grad():
            predicted = model(**inputs).logits.argmax(dim=-1).tolist()
        verdicts += [labels[p] in harmful for p in predicted]
    return verdicts


def harm_judge(config: HarmClassifierConfig | None, trust_remote_code: bool = False):
    """The classifier as a harm judge (responses -> verdicts), or None without one."""
    if config is None:
        return None

    def judge(items: list[Response]) -> list[bool | None]:
        return classify(config, items, trust_remote_code)

    return judge
