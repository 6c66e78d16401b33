"""A byte-level BPE tokenizer with Aya's special tokens and chat template.

The end-of-turn token is the end of sequence, so that generation stops where a turn ends.
"""

from __future__ import annotations

from collections.abc import Iterable

BOS = "<BOS_TOKEN>"
END_OF_TURN = "<|END_OF_TURN_TOKEN|>"
PAD = "<PAD>"
UNK = "<UNK>"
SPECIAL_TOKENS = [
    PAD,
    UNK,
    BOS,
    "<EOS_TOKEN>",
    "<|START_OF_TURN_TOKEN|>",
    END_OF_TURN,
    "<|USER_TOKEN|>",
    "<|CHATBOT_TOKEN|>",
    "<|SYSTEM_TOKEN|>",
]
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{{ message['content'] }}<|END_OF_TURN_TOKEN|>"
    "{% elif message['role'] == 'user' %}"
    "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{{ message['content'] }}<|END_OF_TURN_TOKEN|>"
    "{% elif message['role'] == 'assistant' %}"
    "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"
    "{{ message['content'] }}<|END_OF_TURN_TOKEN|>"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{% endif %}"
)
# Words, single digits (so that numbers are spelt digit by digit), punctuation and spaces. The
# GPT-2 pattern would split Devanagari words at every vowel sign, which are marks, not letters.
PRE_TOKENIZER_PATTERN = r" ?\p{N}| ?[^\s\p{P}\p{S}\p{N}]+| ?[\p{P}\p{S}]+|\s+"


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A `PreTrainedTokenizerFast` trained on `texts`, with the chat template set."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRE_TOKENIZER_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=END_OF_TURN,
        pad_token=PAD,
        unk_token=UNK,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped
