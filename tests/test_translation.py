"""The machine translator: language codes of NLLB-200 and M2M100, and translation with a tiny
random model of each family built here (its text is gibberish: the tests check what reaches
the model and what comes back, not the words)."""

from __future__ import annotations

import logging
import re

import pytest

from mixmerge.config.translations import MTTranslatorConfig
from mixmerge.core.errors import StageError
from mixmerge.core.languages import ISO_639_1
from mixmerge.translation.codes import (
    M2M100,
    M2M100_CODES,
    NLLB,
    NLLB_200_CODES,
)
from mixmerge.translation.mt import MTTranslator
from tests.tiny_mt import NLLB_LANGUAGES, build_tiny_mt

STUDY = {"en": "eng_Latn", "fr": "fra_Latn", "es": "spa_Latn", "hi": "hin_Deva",
         "ar": "arb_Arab", "ru": "rus_Cyrl"}  # fmt: skip
TEXTS = [
    "The cat sleeps on the warm mat.",
    "How do I bake bread at home without an oven?",
    "   ",
    "Le chat dort.",
    "The dog watches the door, and the cat sleeps on the mat by the fire.",
    "Кошка спит на тёплом коврике.",
]
# What a language token looks like in either family: `fra_Latn`, `__fr__`.
LANGUAGE_TOKEN = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}|__[a-z]{2,3}__")


@pytest.fixture(scope="module", params=["nllb", "m2m100"])
def tiny(request, tmp_path_factory):
    """(family, folder) of a tiny random model of each family."""
    if request.param == "m2m100":
        pytest.importorskip("sentencepiece", reason="M2M100's tokenizer needs sentencepiece")
    folder = tmp_path_factory.mktemp(f"tiny-{request.param}")
    return request.param, build_tiny_mt(folder, request.param)


@pytest.fixture(scope="module")
def tiny_nllb(tmp_path_factory):
    return build_tiny_mt(tmp_path_factory.mktemp("tiny-nllb"), "nllb")


def translator(folder, **settings) -> MTTranslator:
    return MTTranslator(
        MTTranslatorConfig(kind="mt", model=str(folder), max_new_tokens=8, **settings)
    )


def unsupported(error: pytest.ExceptionInfo) -> list[str]:
    return str(error.value).split("has no language code for: ")[1].split(", ")


def language_id(folder, family: str, lang: str) -> int:
    from transformers import AutoTokenizer

    token = STUDY[lang] if family == "nllb" else f"__{lang}__"
    return AutoTokenizer.from_pretrained(folder).convert_tokens_to_ids(token)


def test_code_tables_map_the_study_languages():
    for lang, code in STUDY.items():
        assert NLLB[lang] == code
        assert M2M100[lang] == lang
    assert NLLB["zh"] == "zho_Hans" and NLLB["no"] == NLLB["nb"] == "nob_Latn"
    assert M2M100["nb"] == "no"
    for lang in ("xx", "eng", "EN", ""):
        assert lang not in NLLB and lang not in M2M100
    assert "la" not in NLLB  # Latin: in ISO 639-1, not in NLLB-200
    assert "te" not in M2M100 and NLLB["te"] == "tel_Telu"


def test_code_tables_hold_only_real_codes():
    assert len(NLLB_200_CODES) == len(set(NLLB_200_CODES)) == 202
    assert len(M2M100_CODES) == len(set(M2M100_CODES)) == 100
    assert set(NLLB) <= ISO_639_1 and set(M2M100) <= ISO_639_1
    assert set(NLLB.values()) <= set(NLLB_200_CODES)
    assert set(M2M100.values()) <= set(M2M100_CODES)
    # NLLB-200 covers most ISO 639-1 languages, M2M100 fewer
    assert len(NLLB) > len(M2M100) > 90


def test_check_languages_names_every_unsupported_language(tiny):
    family, folder = tiny
    mt = translator(folder)
    mt.check_languages(list(STUDY))
    # `it`: NLLB-200 has Italian but this tiny tokenizer has no token for it.
    asked = ["en", "xx", "fr", "it", "la", "gn"] if family == "nllb" else ["en", "gn", "xx", "te"]
    with pytest.raises(StageError) as error:
        mt.check_languages(asked)
    expected = ["xx", "it", "la", "gn"] if family == "nllb" else ["gn", "xx", "te"]
    assert unsupported(error) == expected
    style = "NLLB codes" if family == "nllb" else "M2M100 codes"
    assert f"the MT model {folder} ({style})" in str(error.value)


def test_codes_set_against_the_tokenizer_fit_no_language(tiny_nllb):
    with pytest.raises(StageError) as error:
        translator(tiny_nllb, codes="m2m100").check_languages(["en", "fr"])
    assert unsupported(error) == ["en", "fr"]
    assert "M2M100 codes" in str(error.value)
    translator(tiny_nllb, codes="nllb").check_languages(NLLB_LANGUAGES)


def test_a_tokenizer_without_language_tokens_is_refused(tmp_path):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel({"<unk>": 0, "cat": 1}, unk_token="<unk>"))
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="<unk>").save_pretrained(tmp_path)
    with pytest.raises(StageError, match="cannot tell how the MT model .* names languages"):
        translator(tmp_path).check_languages(["en"])


def test_a_missing_model_is_a_stage_error(tmp_path):
    with pytest.raises(StageError, match="cannot load the tokenizer of the MT model"):
        translator(tmp_path / "absent").check_languages(["en"])


def test_translate_returns_one_text_per_input_in_order(tiny):
    family, folder = tiny
    mt = translator(folder, batch_size=64)
    out = mt.translate(TEXTS, "en", "fr")
    assert len(out) == len(TEXTS) and all(isinstance(text, str) for text in out)
    assert out[2] == ""  # a blank text stays empty
    alone = [mt.translate([text], "en", "fr")[0] for text in TEXTS]
    assert out == alone
    # The check above means something only if different inputs give different outputs.
    assert len(set(out)) > 2
    assert all(text == text.strip() and not LANGUAGE_TOKEN.search(text) for text in out)


def test_small_batches_give_what_one_batch_gives(tiny):
    _, folder = tiny
    whole = translator(folder, batch_size=64).translate(TEXTS, "fr", "hi")
    assert translator(folder, batch_size=2).translate(TEXTS, "fr", "hi") == whole
    assert translator(folder, batch_size=1).translate(TEXTS, "fr", "hi") == whole


def test_translating_warns_not_at_every_batch(tiny, caplog):
    _, folder = tiny
    # transformers' logger keeps its records to itself unless given a handler
    transformers_log = logging.getLogger("transformers")
    transformers_log.addHandler(caplog.handler)
    try:
        translator(folder, batch_size=1).translate(TEXTS, "en", "es")
    finally:
        transformers_log.removeHandler(caplog.handler)
    assert "max_length" not in caplog.text


def test_beam_search_translates_every_text(tiny):
    _, folder = tiny
    out = translator(folder, num_beams=3, batch_size=2).translate(TEXTS, "ru", "ar")
    assert len(out) == len(TEXTS) and out[2] == "" and all(out[i] for i in (0, 1, 3))


def test_source_language_is_marked_and_target_language_forced(tiny, monkeypatch):
    from transformers import M2M100ForConditionalGeneration

    family, folder = tiny
    calls = []
    generate = M2M100ForConditionalGeneration.generate

    def spy(self, *args, **kwargs):
        output = generate(self, *args, **kwargs)
        calls.append((kwargs["input_ids"], output))
        return output

    monkeypatch.setattr(M2M100ForConditionalGeneration, "generate", spy)
    translator(folder, batch_size=2).translate(TEXTS, "es", "ru")
    assert len(calls) == 3  # five texts to translate, two at a time
    source, target = language_id(folder, family, "es"), language_id(folder, family, "ru")
    for input_ids, output in calls:
        assert input_ids[:, 0].tolist() == [source] * len(input_ids)
        # position 0 is the decoder's start token; the first generated one is the target's
        assert output[:, 1].tolist() == [target] * len(output)


def test_only_translating_loads_the_model(tiny_nllb, monkeypatch):
    from transformers import AutoModelForSeq2SeqLM

    class Loaded(Exception):
        pass

    def load(*args, **kwargs):
        raise Loaded

    monkeypatch.setattr(AutoModelForSeq2SeqLM, "from_pretrained", load)
    mt = translator(tiny_nllb)
    mt.check_languages(["en", "fr", "hi"])
    assert mt.translate(["", "  "], "en", "fr") == ["", ""]
    with pytest.raises(StageError):
        mt.translate(["The cat sleeps."], "en", "it")
    with pytest.raises(Loaded):
        mt.translate(["The cat sleeps."], "en", "fr")


# --- the cache, line by line, and the stage --------------------------------------------------


class Echo:
    """A translator that marks each line with its target, counting what it is sent; it can be
    told to die after some calls, as a killed run does."""

    model = "echo"

    def __init__(self, die_after: int | None = None):
        self.sent: list[str] = []
        self.die_after = die_after

    def check_languages(self, languages):
        pass

    def translate(self, texts, source, target):
        if self.die_after is not None and len(self.sent) >= self.die_after:
            raise KeyboardInterrupt
        self.sent += texts
        return [f"<{target}> {text}" for text in texts]


def test_texts_go_line_by_line_keeping_their_layout_and_each_line_is_sent_once(tmp_path):
    from mixmerge.translation import CachedTranslator

    cached = CachedTranslator(Echo(), str(tmp_path), (), 8)
    texts = ["Boil water.\n\n1. Warm the pot.\n  2. Steep.", "Boil water.", ""]
    out = cached.translate(texts, "en", "fr")
    assert out[0] == "<fr> Boil water.\n\n<fr> 1. Warm the pot.\n  <fr> 2. Steep."
    assert out[1:] == ["<fr> Boil water.", None]
    assert cached.inner.sent == ["Boil water.", "1. Warm the pot.", "2. Steep."]


def test_a_killed_translation_resumes_with_what_is_missing(tmp_path):
    from mixmerge.translation import CachedTranslator

    lines = [f"Line {i}." for i in range(20)]
    # Chunks of 8: the kill comes after the first chunk was written.
    with pytest.raises(KeyboardInterrupt):
        CachedTranslator(Echo(die_after=8), str(tmp_path), (), 8).translate(lines, "en", "hi")
    again = CachedTranslator(Echo(), str(tmp_path), (), 8)
    assert again.translate(lines, "en", "hi") == [f"<hi> {line}" for line in lines]
    assert again.inner.sent == lines[8:]
    assert again.usage() == {"lines_translated": 12, "lines_cached": 8}
    other = CachedTranslator(Echo(), str(tmp_path), (), 8)
    other.translate(lines, "en", "ar")  # another target: nothing cached for it
    assert other.usage()["lines_cached"] == 0


def test_a_record_keeps_its_source_id_and_the_translator(tmp_path):
    from mixmerge.core.records import Record
    from mixmerge.translation import CachedTranslator, translate_records

    records = [
        Record("s:en:c:1", "s", "en", "general", "c", "Hi?", response="Hello.", chosen="Hello.",
               rejected="Go away."),
        Record("s:en:c:2", "s", "en", "general", "c", "Why?", response="Because."),
    ]  # fmt: skip
    translator = CachedTranslator(Echo(), str(tmp_path), (), 8)
    fields = ["prompt", "response", "chosen", "rejected"]
    rows, report = translate_records("t", records, fields, ["en", "fr"], translator, "mt")
    assert [(r["language"], r["source_id"]) for r in rows] == [
        ("fr", "s:en:c:1"),
        ("fr", "s:en:c:2"),
    ]
    assert rows[0]["rejected"] == "<fr> Go away." and rows[1]["rejected"] is None
    assert {rows[0][k] for k in ("backend", "model", "translated_from")} == {"mt", "echo", "en"}
    assert report["kept"] == {"fr": 2}
    # Only the prompt asked for: the answers, still English, are not carried over.
    rows, _ = translate_records("t", records, ["prompt"], ["fr"], translator, "mt")
    assert rows[0]["prompt"] == "<fr> Hi?" and rows[0]["response"] is None


def test_an_unknown_language_code_stops_the_stage_before_anything_is_written(tmp_path):
    from mixmerge.stages import translate

    from mixmerge import paths
    from mixmerge.validation import validate_params

    model = build_tiny_mt(tmp_path / "nllb", "nllb")
    source = tmp_path / "en.jsonl"
    source.write_text('{"prompt": "Hi?", "answer": "Hello."}\n', encoding="utf-8")
    assert "it" not in NLLB_LANGUAGES
    raw = {
        "languages": ["en", "fr", "it"],
        "data": {"sources": {"en": {"kind": "files", "files": str(source), "language": "en",
                                    "objective": "general", "use": "train",
                                    "columns": {"prompt": "prompt", "response": "answer"}}}},
        "translations": {"t": {"source": "en", "translator": {
            "kind": "mt", "model": str(model), "cache_dir": str(tmp_path / "cache")}}},
    }  # fmt: skip
    with pytest.raises(StageError, match=r"\(NLLB codes\) has no language code for: it$"):
        translate.run(validate_params(raw), "t", tmp_path)
    assert not paths.generated("translate", "t", tmp_path).exists()
    assert not (tmp_path / "cache").exists()
