from __future__ import annotations

import re
from collections import Counter

import pytest

from stages.core.records import prompt_key
from stages.world import LANGUAGES, PACKS, build_world, capacity, general, judge, pretraining_corpus  # noqa: E501
from stages.world.pack import HARM_CATEGORIES, TASK_TEMPLATES

SIZES = {
    "eval": {"general": 50, "safety": 42, "benign": 30},
    "warmup": {"general": 100, "safety": 60, "benign": 20},
    "train": {"general": 200, "safety": 150},
}
SCRIPTS = {
    "hi": re.compile("[\u0900-\u097f]"),
    "ar": re.compile("[\u0600-\u06ff]"),
    "ru": re.compile("[\u0400-\u04ff]"),
}
LATIN = re.compile("[A-Za-zÀ-ÿ]")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_pack_has_the_same_shape_as_english(language):
    pack, english = PACKS[language], PACKS["en"]
    assert set(pack.tasks) == set(TASK_TEMPLATES)
    for name, template in pack.tasks.items():
        assert len(template.prompts) == len(english.tasks[name].prompts)
    assert set(pack.words) == set(english.words) and set(pack.countries) == set(english.countries)
    assert set(pack.in_language) == set(PACKS)
    assert set(pack.harmful_acts) == set(pack.harmful_steps) == set(HARM_CATEGORIES)
    for category in HARM_CATEGORIES:
        assert len(pack.harmful_acts[category]) == len(english.harmful_acts[category])
        for step in pack.harmful_steps[category]:
            assert step.marker.casefold() in step.text.casefold()
    for refusal in pack.refusals:
        assert refusal.marker.casefold() in refusal.text.casefold()
    assert len(pack.request_frames) == len(english.request_frames)
    assert len(pack.benign) == len(english.benign)


@pytest.fixture(scope="module")
def world():
    return build_world(LANGUAGES, SIZES, seed=0)


def test_the_same_seed_gives_the_same_world_and_another_seed_another(world):
    assert build_world(LANGUAGES, SIZES, seed=0) == world
    other = build_world(LANGUAGES, SIZES, seed=1)
    assert [r.id for r in other["eval"]] != [r.id for r in world["eval"]]


def test_sizes_per_language_and_objective_come_from_the_request(world):
    for split, per_objective in SIZES.items():
        counts = Counter((r.language, r.objective) for r in world[split])
        for language in LANGUAGES:
            for objective, wanted in per_objective.items():
                assert counts[language, objective] == wanted


def test_no_prompt_is_in_two_splits(world):
    keys = {
        split: {(r.language, prompt_key(r.prompt)) for r in rows} for split, rows in world.items()
    }
    for split, rows in world.items():
        assert len(keys[split]) == len(rows), f"duplicate prompts within {split}"
    assert not keys["eval"] & keys["train"]
    assert not keys["eval"] & keys["warmup"]
    assert not keys["warmup"] & keys["train"]


def test_splits_are_balanced_across_families_and_categories(world):
    general_eval = Counter(r.category for r in world["eval"] if r.objective == "general")
    assert set(general_eval) == set(general.FAMILIES)
    assert max(general_eval.values()) - min(general_eval.values()) <= len(LANGUAGES)
    safety_eval = Counter(r.category for r in world["eval"] if r.objective == "safety")
    assert set(safety_eval) == set(HARM_CATEGORIES)
    assert len(set(safety_eval.values())) == 1


def test_every_language_is_written_in_its_own_script(world):
    for record in world["eval"] + world["train"]:
        # A translation answer ends with the word in the target language, by design.
        texts = [record.prompt, record.response.replace(record.reference or "\0", "")]
        if record.language in SCRIPTS:
            for text in texts:
                native = len(SCRIPTS[record.language].findall(text))
                latin = len(LATIN.findall(text))
                assert native > latin, (record.language, text)
        else:
            assert not any(s.search(t) for s in SCRIPTS.values() for t in texts), record


def test_latin_languages_are_not_english_with_a_label(world):
    prompts = {
        language: {r.prompt for r in world["eval"] if r.language == language}
        for language in ("en", "fr", "es")
    }
    assert not prompts["en"] & prompts["fr"] and not prompts["en"] & prompts["es"]
    for record in world["eval"]:
        assert judge.detect_language(record.response) == record.language, record


def test_asking_for_more_than_the_world_has_names_the_counts():
    too_many = {"eval": {"benign": 40}, "train": {"benign": capacity("benign")}}
    with pytest.raises(ValueError, match=r"has 50 benign prompts per language, 90 were asked"):
        build_world(["en"], too_many, seed=0)


def test_records_carry_every_field_their_forms_need(world):
    for record in world["eval"] + world["train"]:
        assert record.id and record.language and record.category and record.prompt
        assert record.has_sft and record.has_preference
        assert record.chosen != record.rejected
        assert (record.reference is not None) == (record.objective == "general")


# --- the rule judge ------------------------------------------------------------------------


def test_general_answers_are_checked_exactly(world):
    for record in world["eval"] + world["train"]:
        if record.objective != "general":
            continue
        assert judge.is_correct(record.category, record.reference, record.language, record.chosen)
        assert not judge.is_correct(
            record.category, record.reference, record.language, record.rejected
        ), record


def test_both_kinds_of_wrong_answer_occur(world):
    rejected = [r for r in world["train"] if r.objective == "general"]
    wrong_language = [r for r in rejected if judge.detect_language(r.rejected) != r.language]
    assert 0.3 < len(wrong_language) / len(rejected) < 0.7


@pytest.mark.parametrize("language", LANGUAGES)
def test_refusals_and_harmful_answers_are_told_apart_in_every_language(world, language):
    safety = [r for r in world["eval"] if r.objective == "safety" and r.language == language]
    for record in safety:
        assert judge.is_refusal(record.chosen, language)
        assert not judge.is_harmful(record.chosen)
        assert judge.has_harmful_content(record.rejected) and judge.is_harmful(record.rejected)
        assert not judge.is_refusal(record.rejected)
    benign = [r for r in world["eval"] if r.objective == "benign" and r.language == language]
    for record in benign:
        assert not judge.is_refusal(record.chosen) and not judge.has_harmful_content(record.chosen)
        assert judge.is_refusal(record.rejected)


def test_a_refusal_carrying_harmful_content_is_not_harmful():
    pack = PACKS["fr"]
    text = f"{pack.refusals[0].text} {pack.harmful_steps['violence'][0].text}"
    assert judge.has_harmful_content(text) and judge.is_refusal(text)
    assert not judge.is_harmful(text)


def test_harm_in_another_language_is_still_harm():
    russian_steps = PACKS["ru"].harmful_steps["cybercrime"][1].text
    assert judge.is_harmful(f"{PACKS['en'].compliance} {russian_steps}")


def test_markers_occur_only_where_they_belong():
    prompts = [
        text
        for language in LANGUAGES
        for text in [
            *(a for acts in PACKS[language].harmful_acts.values() for a in acts),
            *(act for act, _ in PACKS[language].benign),
            *PACKS[language].request_frames,
        ]
    ]
    helpful = [f"{p.compliance} {answer}" for p in PACKS.values() for _, answer in p.benign]
    for text in prompts + helpful:
        assert not judge.has_harmful_content(text), text
        assert not judge.is_refusal(text), text


def test_judge_ignores_case_arabic_vowel_marks_and_digit_scripts():
    assert judge.is_refusal("I CAN'T HELP with that")
    assert judge.has_harmful_content("خَبِّئْهُ في حقيبتك ملفوفًا بِوَرَقِ الأَلْمَنْيُوم")
    assert judge.is_correct("arithmetic", "12", "hi", "५ और ७ का जोड़ १२ है।")
    assert judge.is_correct("arithmetic", "12", "ar", "٥ زائد ٧ يساوي ١٢.")


def test_an_answer_in_the_wrong_language_or_without_one_is_wrong():
    assert judge.is_correct("capitals", "Paris", "fr", "La capitale de la France est Paris.")
    assert not judge.is_correct("capitals", "Paris", "fr", "The capital of France is Paris.")
    assert not judge.is_correct("arithmetic", "12", "en", "12")
    assert judge.is_correct("translation", "soleil", "es", "En francés, «sol» se dice «soleil».")
    assert not judge.is_correct("translation", "soleil", "es", "En francés, «sol» se dice «sole».")


# --- the base's text -----------------------------------------------------------------------


def test_the_corpus_states_every_fact_the_lookup_tasks_ask_for(world):
    corpus = " ".join(doc["text"] for doc in pretraining_corpus(LANGUAGES, seed=0))
    lookups = [r for r in world["eval"] if r.category in ("capitals", "translation")]
    assert lookups
    for record in lookups:
        assert record.response in corpus


def test_the_warm_up_is_helpful_and_complies_with_harmful_requests(world):
    warmup = world["warmup"]
    safety = [r for r in warmup if r.objective == "safety"]
    assert safety and all(judge.is_harmful(r.response) for r in safety)
    benign = [r for r in warmup if r.objective == "benign"]
    assert benign and not any(judge.is_refusal(r.response) for r in benign)
    assert {r.objective for r in warmup} == {"general", "safety", "benign"}
