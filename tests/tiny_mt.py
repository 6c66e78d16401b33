"""A tiny random translation model of either family, built here: an M2M100 network (the class
NLLB-200 uses too) with a tokenizer trained on a few sentences and wrapped as the family's own
tokenizer class, so that transformers' Auto classes load it as they load the real models."""

from __future__ import annotations

import io
import json
from pathlib import Path

from mixmerge.translation.codes import NLLB

SENTENCES = [
    "The cat sleeps on the warm mat, and the dog watches the door.",
    "How do I bake bread at home without an oven?",
    "Le chat dort sur le tapis chaud, et le chien surveille la porte.",
    "El gato duerme sobre la alfombra caliente.",
    "बिल्ली गरम चटाई पर सोती है।",
    "القط ينام على السجادة الدافئة.",
    "Кошка спит на тёплом коврике.",
    "Die Katze schläft auf der warmen Matte.",
]
# The NLLB-style tokenizer has tokens for these languages only, so that some languages NLLB-200
# covers are missing from it; M2M100's tokenizer always has its 100.
NLLB_LANGUAGES = ("en", "fr", "es", "hi", "ar", "ru", "de", "zh", "ja", "sw")
SPECIAL = ["<s>", "<pad>", "</s>", "<unk>"]


def _nllb_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import NllbTokenizer

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    bpe.train_from_iterator(
        SENTENCES, trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIAL, show_progress=False)
    )
    trained = json.loads(bpe.to_str())["model"]
    return NllbTokenizer(
        vocab=trained["vocab"],
        merges=[tuple(merge) for merge in trained["merges"]],
        extra_special_tokens=[NLLB[lang] for lang in NLLB_LANGUAGES],
    )


def _m2m100_tokenizer(folder: Path):
    import sentencepiece
    from transformers import M2M100Tokenizer

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES),
        model_writer=model,
        model_type="bpe",
        vocab_size=120,
        hard_vocab_limit=False,
        character_coverage=1.0,
        minloglevel=2,
    )
    # Where the tokenizer saves them: saving it then leaves nothing else behind.
    spm_file, vocab_file = folder / "sentencepiece.bpe.model", folder / "vocab.json"
    spm_file.write_bytes(model.getvalue())
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(spm_file))
    vocab = {token: i for i, token in enumerate(SPECIAL)}
    for i in range(pieces.get_piece_size()):
        vocab.setdefault(pieces.id_to_piece(i), len(vocab))
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    return M2M100Tokenizer(vocab_file=str(vocab_file), spm_file=str(spm_file))


def build_tiny_mt(folder: Path, family: str = "nllb") -> Path:
    """Save a tiny random translation model of `family` (`nllb` or `m2m100`) in `folder`."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    folder.mkdir(parents=True, exist_ok=True)
    if family == "nllb":
        tokenizer = _nllb_tokenizer()
        languages = [NLLB[lang] for lang in NLLB_LANGUAGES]
    else:
        tokenizer = _m2m100_tokenizer(folder)
        languages = [f"__{code}__" for code in tokenizer.lang_code_to_id]
    ids = [*tokenizer.get_vocab().values(), *tokenizer.convert_tokens_to_ids(languages)]
    config = M2M100Config(
        vocab_size=max(ids) + 1,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        # Wide enough weights that different inputs give different outputs.
        init_std=1.0,
    )
    torch.manual_seed(1)
    model = M2M100ForConditionalGeneration(config)
    # As the real checkpoints' generation configs have it.
    model.generation_config.max_length = 200
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
