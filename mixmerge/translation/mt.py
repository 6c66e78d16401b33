"""Machine translation with transformers: the NLLB-200 family (Costa-jussà et al., 2022, "No
Language Left Behind", arXiv 2207.04672; "Mix Data or Merge Models?" translated with NLLB-3.3B)
and M2M100 (Fan et al., 2020, "Beyond English-Centric Multilingual Machine Translation", arXiv
2010.11125). Both are M2M100ForConditionalGeneration models whose tokenizer puts the source
language's token before the text, and whose decoder is made to start with the target
language's token."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

from mixmerge.config.translations import MTTranslatorConfig
from mixmerge.core.errors import StageError
from mixmerge.translation.codes import FAMILIES, TABLES, language_token

STYLE = {"nllb": "NLLB codes", "m2m100": "M2M100 codes"}


class MTTranslator:
    """Translates texts between ISO 639-1 languages with `config.model`. The tokenizer is loaded
    when first needed and the model at the first `translate`, so that checking the languages
    of a run whose translations are all cached costs no model load."""

    def __init__(self, config: MTTranslatorConfig):
        self.config = config
        self.model = config.model
        self._network = None

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(self.model)
        except (OSError, ValueError, ImportError) as error:
            raise StageError(
                f"cannot load the tokenizer of the MT model {self.model} (a model folder, or a "
                f"hub id in the local cache): {error}"
            ) from error

    @cached_property
    def family(self) -> str:
        """`nllb` or `m2m100`: `config.codes`, or told by the tokenizer's language tokens."""
        if self.config.codes != "auto":
            return self.config.codes
        for family, codes in FAMILIES.items():
            if any(self._token_id(language_token(family, code)) is not None for code in codes):
                return family
        raise StageError(
            f"cannot tell how the MT model {self.model} names languages: its tokenizer has "
            "neither NLLB tokens (eng_Latn, ...) nor M2M100 tokens (__en__, ...); set `codes`"
        )

    @cached_property
    def _language_ids(self) -> frozenset[int]:
        ids = (self._token_id(language_token(self.family, c)) for c in FAMILIES[self.family])
        return frozenset(i for i in ids if i is not None)

    def _token_id(self, token: str) -> int | None:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        return None if token_id is None or token_id == self.tokenizer.unk_token_id else token_id

    def _code(self, lang: str) -> str | None:
        """The model's own code for ISO 639-1 `lang`, if its tokenizer has that language."""
        code = TABLES[self.family].get(lang)
        if code is None or self._token_id(language_token(self.family, code)) is None:
            return None
        return code

    def check_languages(self, languages: Iterable[str]) -> None:
        """Raise a StageError naming every language the model cannot translate into or from."""
        missing = [lang for lang in dict.fromkeys(languages) if self._code(lang) is None]
        if missing:
            raise StageError(
                f"the MT model {self.model} ({STYLE[self.family]}) has no language code for: "
                + ", ".join(missing)
            )

    def _load(self):
        import torch
        from transformers import AutoModelForSeq2SeqLM

        device = self.config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        network = AutoModelForSeq2SeqLM.from_pretrained(self.model, dtype=torch.float32)
        # `max_new_tokens` bounds a translation; the checkpoint's own `max_length` (NLLB's is
        # 200) would only give way to it with a warning at every batch.
        network.generation_config.max_length = None
        return network.to(device).eval()

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        """`texts` translated from `source` into `target` (ISO 639-1), in order; a blank text
        stays empty. Batches of `batch_size`, sorted by length so that a batch pads little."""
        import torch

        self.check_languages([source, target])
        out = [""] * len(texts)
        todo = [i for i, text in enumerate(texts) if text.strip()]
        if not todo:
            return out
        tokenizer = self.tokenizer
        tokenizer.src_lang = self._code(source)
        source_id = self._token_id(language_token(self.family, self._code(source)))
        target_id = self._token_id(language_token(self.family, self._code(target)))
        # Cut at what the model can read (NLLB: 1024 tokens): a longer line cannot be encoded.
        encoded = tokenizer([texts[i] for i in todo], truncation=True)["input_ids"]
        # A tokenizer that ignores `src_lang` would have the model guess the source language.
        if source_id not in encoded[0]:
            raise StageError(
                f"the tokenizer of the MT model {self.model} does not mark the source language"
            )
        if self._network is None:
            self._network = self._load()
        network = self._network
        order = sorted(range(len(todo)), key=lambda k: -len(encoded[k]))
        for start in range(0, len(order), self.config.batch_size):
            batch = order[start : start + self.config.batch_size]
            inputs = tokenizer.pad({"input_ids": [encoded[k] for k in batch]}, return_tensors="pt")
            with torch.no_grad():
                generated = network.generate(
                    **inputs.to(network.device),
                    forced_bos_token_id=target_id,
                    max_new_tokens=self.config.max_new_tokens,
                    num_beams=self.config.num_beams,
                    do_sample=False,
                )
            # Under transformers 5 a tokenizer saved without its language tokens listed as
            # special ones (some M2M100 checkpoints) would print them in the text.
            kept = [[t for t in row if t not in self._language_ids] for row in generated.tolist()]
            decoded = tokenizer.batch_decode(kept, skip_special_tokens=True)
            for k, text in zip(batch, decoded, strict=True):
                out[todo[k]] = text.strip()
        return out
