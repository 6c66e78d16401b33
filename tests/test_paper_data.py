"""The paper profile's data from public sources, end to end through DVC at tiny sizes.

configs/paper-aya-expanse-8b.yaml reads Aya Red-teaming, UltraFeedback-binarized, Dolly-200 and
XSTest from the hub cache and makes the rest: `translate@ultrafeedback` and `synthesize@safety`.
Here the hub datasets are local folders shaped like them (their splits, configs and columns),
with XSafety's real prompts in all six languages as the red-teaming seeds; the translator is a
tiny random NLLB-style model built here, and the teacher and the judge are the loopback server
of tests/judge_server.py (which writes and judges in the embedded world's phrases). Everything
else is the profile as users run it.
"""

from __future__ import annotations

import copy
import csv
import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from mixmerge.config.profiles import read_params, resolved_text
from mixmerge.core.io import read_jsonl
from mixmerge.synthesis import NOT_HARMFUL
from mixmerge.validation import load_params
from tests.conftest import REPO, SHARED_DATA, copy_repository, run_in, running_judge_server
from tests.tiny_mt import build_tiny_mt

PROFILES = ["paper-aya-expanse-8b.yaml", "aya-expanse-8b-1gpu.yaml"]
KEY, KEY_ENV = "teacher-key", "MIXMERGE_TEST_TEACHER_KEY"
XSAFETY = SHARED_DATA / "xsafety"
# The red-teaming set names its languages in English words, one split per language.
SPLITS = {"en": "english", "fr": "french", "es": "spanish", "hi": "hindi", "ar": "arabic",
          "ru": "russian"}  # fmt: skip
SEEDS_PER_LANGUAGE = 10

needs_xsafety = pytest.mark.skipif(not XSAFETY.is_dir(), reason=f"no {XSAFETY}")


@pytest.mark.parametrize("profile", PROFILES)
def test_the_paper_profiles_need_no_file_of_their_own(profile):
    text = (REPO / "configs" / profile).read_text(encoding="utf-8")
    assert "data/external" not in text and "supply your own" not in text
    params = load_params(REPO / "configs" / profile)
    assert {s.kind for s in params.data.sources.values()} == {"hf", "generated"}
    assert set(params.translations) == {"ultrafeedback"}
    assert set(params.syntheses) == {"safety"}


@pytest.mark.parametrize("profile", PROFILES)
def test_the_paper_profiles_validate_and_dvc_reads_their_whole_dag(profile, tmp_path):
    repo = copy_repository(tmp_path)
    (repo / "params.yaml").write_text(resolved_text(REPO / "configs" / profile))
    assert "valid" in run_in(["mixmerge", "validate"], repo)
    stages = run_in(["dvc", "stage", "list", "--name-only"], repo).split()
    assert {"translate@ultrafeedback", "synthesize@safety", "prepare"} <= set(stages)
    # The paper's grid search of the Linear, SLERP and TIES merges at both stages.
    searches = [f"search@{stage}_{method}" for stage in ("sft", "dpo")
                for method in ("linear", "slerp", "ties")]  # fmt: skip
    assert set(searches) <= set(stages)
    # Every run, merge and chosen point is judged, and the base.
    assert len([s for s in stages if s.startswith("evaluate-")]) == 9 + 4 + 14 + 6 + 1


# --- stand-ins for the hub datasets -----------------------------------------------------------


def hub_folder(folder: Path, configs: dict[str, dict[str, list[dict]]]) -> str:
    """A dataset folder as the hub holds it: parquet files per config and split, named in the
    card's `configs`, so that `datasets.load_dataset(folder, name, split=...)` reads it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    card = []
    for config, splits in configs.items():
        files = []
        for split, rows in splits.items():
            path = folder / config / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows), path)
            files.append({"split": split, "path": f"{config}/{split}-*"})
        card.append({"config_name": config, "data_files": files})
    (folder / "README.md").write_text(
        "---\n" + yaml.safe_dump({"configs": card}) + "---\n", encoding="utf-8"
    )
    return str(folder)


def xsafety_prompts(language: str, n: int) -> list[tuple[str, str]]:
    """The first prompts of each XSafety category file, as (category, prompt)."""
    files = sorted((XSAFETY / language).glob("*.csv"))
    prompts = []
    for path in files:
        with path.open(encoding="utf-8-sig", newline="") as file:
            rows = [row[0].strip() for row in csv.reader(file) if row and row[0].strip()]
        category = path.stem.split("_")[0]
        prompts += [(category, prompt) for prompt in rows[: n // len(files) + 1]]
    return prompts[:n]


def stand_ins(folder: Path) -> dict[str, str]:
    redteam = {
        split: [
            {"prompt": prompt, "language": split.capitalize(), "harm_category": category,
             "global_or_local": "global", "literal_translation": None,
             "semantic_translation": None, "explanation": None}
            for category, prompt in xsafety_prompts(code, SEEDS_PER_LANGUAGE)
        ]
        for code, split in SPLITS.items()
    }  # fmt: skip
    chats = [
        ("How do I make a cup of tea?", "Boil water.\n\n1. Warm the pot.\n2. Steep for 3 minutes.",
         "Use cold water."),
        ("Name three primary colours.", "Red, blue and yellow.", "Green."),
        ("What is 12 times 12?", "It is 144.", "It is 124."),
        ("Write a haiku about rain.", "Soft rain on the roof\n  a quiet drum all night long\n"
         "morning smells of earth", "Rain is wet."),
    ]  # fmt: skip
    ultrafeedback = [
        {"prompt": prompt, "prompt_id": str(i), "messages": [],
         "chosen": [{"role": "user", "content": prompt}, {"role": "assistant", "content": good}],
         "rejected": [{"role": "user", "content": prompt}, {"role": "assistant", "content": bad}],
         "score_chosen": 8.0, "score_rejected": 3.0}
        for i, (prompt, good, bad) in enumerate(chats)
    ]  # fmt: skip
    codes = {"eng": "Latn", "fra": "Latn", "spa": "Latn", "hin": "Deva", "arb": "Arab",
             "rus": "Cyrl"}  # fmt: skip

    def dolly(languages):
        return [
            {"id": i, "inputs": f"({code}) open question {i}", "targets": "an answer",
             "language": code, "script": codes[code]}
            for code in languages for i in range(3)
        ]  # fmt: skip

    with (SHARED_DATA / "xstest" / "xstest_prompts.csv").open(encoding="utf-8") as file:
        xstest = [dict(row) for row in csv.DictReader(file)][:240:8]  # both labels
    return {
        "redteam": hub_folder(folder / "aya_redteaming", {"default": redteam}),
        "ultrafeedback_en": hub_folder(
            folder / "ultrafeedback_binarized", {"default": {"train_prefs": ultrafeedback}}
        ),
        "dolly": hub_folder(
            folder / "aya_evaluation_suite",
            {
                "dolly_human_edited": {"test": dolly(["fra", "spa", "hin", "arb", "rus"])},
                "dolly_machine_translated": {"test": dolly(list(codes))},
            },
        ),
        "xstest": hub_folder(folder / "XSTest", {"default": {"test": xstest}}),
        "xstest_safe": str(sum(row["label"] == "safe" for row in xstest)),
    }


# --- the study's data through DVC --------------------------------------------------------------


def call(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    references = tmp_path_factory.mktemp("teacher") / "references.jsonl"
    references.write_text("", encoding="utf-8")
    with running_judge_server(references, KEY) as url:
        yield url


def tiny_profile(folders: dict[str, str], translator: Path, server: str) -> dict:
    raw = copy.deepcopy(read_params(REPO / "configs" / PROFILES[0]))  # anchors share objects
    sources = raw["data"]["sources"]
    for name in ("redteam", "ultrafeedback_en", "dolly", "xstest"):
        sources[name]["dataset"] = folders[name]
    sources["dolly_en"]["dataset"] = folders["dolly"]
    raw["translations"]["ultrafeedback"]["translator"] = {
        "kind": "mt", "model": str(translator), "batch_size": 4, "max_new_tokens": 8,
    }  # fmt: skip
    endpoint = {"kind": "llm", "base_url": f"{server}/v1", "model": "rule",
                "api_key_env": KEY_ENV, "max_retries": 1, "timeout_s": 10.0,
                "price_per_million_tokens": {"prompt": 2.5, "completion": 10.0}}  # fmt: skip
    synthesis = raw["syntheses"]["safety"]
    synthesis["rephrase"] = 1
    synthesis["safe"] = endpoint | {"cache_dir": "cache/teacher"}
    # No GPU for the base's own answers: the teacher is asked for the harmful side instead.
    synthesis["harmful"] = endpoint | {"cache_dir": "cache/teacher"}
    synthesis["judge"] = endpoint | {"cache_dir": "cache/judge"}
    raw["evaluation"]["judge"] = endpoint | {"cache_dir": "cache/judge"}
    return raw


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory, teacher):
    if not XSAFETY.is_dir():
        pytest.skip(f"no {XSAFETY}")
    folder = tmp_path_factory.mktemp("paper-data")
    folders = stand_ins(folder / "hub")
    translator = build_tiny_mt(folder / "nllb-tiny", "nllb")
    repo = copy_repository(folder / "repo")
    raw = tiny_profile(folders, translator, teacher)
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, KEY)
        run_in(["dvc", "repro", "prepare"], repo)
        answered = call(f"{teacher}/stats")["answered"]
        yield repo, teacher, answered, int(folders["xstest_safe"])


def report(repo: Path, stage: str) -> dict:
    return json.loads((repo / f"reports/generated/{stage}.json").read_text(encoding="utf-8"))


@needs_xsafety
def test_the_synthesis_keeps_judged_pairs_and_counts_what_it_drops(paper_data):
    repo, _, _, _ = paper_data
    synthesis = report(repo, "synthesize/safety")
    languages = list(SPLITS)
    # Of each language's ten prompts, two are held out for eval and one for dev; each seed is
    # rephrased once.
    assert synthesis["seed_prompts"] == dict.fromkeys(languages, 7)
    assert synthesis["prompts"] == dict.fromkeys(languages, 14)
    # The server refuses to write one harmful answer in four: those prompts are dropped.
    dropped = sum(reasons.get(NOT_HARMFUL, 0) for reasons in synthesis["dropped"].values())
    kept = sum(synthesis["kept"].values())
    assert dropped > 0 and kept > 0 and kept + dropped == 6 * 14
    assert all(synthesis["kept"][code] > 0 for code in languages)
    usage = synthesis["usage"]
    assert usage["safe"]["requests"] > 0 and usage["judge"]["completion_tokens"] > 0
    assert usage["safe"]["cost_usd"] > 0
    assert KEY not in json.dumps(synthesis)

    rows = read_jsonl(repo / "data/generated/synthesize/safety/records.jsonl")
    assert len(rows) == kept
    assert all(r["response"] == r["chosen"] != r["rejected"] for r in rows)
    assert sum(r["rephrased"] for r in rows) > 0


@needs_xsafety
def test_no_seed_of_the_synthesis_is_judged_on(paper_data):
    repo, _, _, _ = paper_data
    seeds = {
        r["source_id"] for r in read_jsonl(repo / "data/generated/synthesize/safety/records.jsonl")
    }
    held_out = {
        r["id"]
        for split in ("eval", "dev")
        for code in SPLITS
        for r in read_jsonl(repo / f"data/prepared/{split}/{code}/safety.jsonl")
    }
    assert seeds and held_out and not seeds & held_out


@needs_xsafety
def test_prepare_trains_on_the_synthesized_and_translated_data_and_judges_the_public_sets(
    paper_data,
):
    repo, _, _, xstest_safe = paper_data
    counts = json.loads((repo / "reports/prepare.json").read_text())["counts"]
    for code in SPLITS:
        assert counts["train"][code]["safety"] > 0
        assert counts["train"][code]["general"] > 0
        assert counts["eval"][code]["safety"] == 2
        # Dolly-200, one config per language: a quarter (here one prompt of three) for dev.
        assert counts["eval"][code]["general"] == 2
        assert counts["dev"][code] == {"safety": 1, "general": 1}
    assert counts["eval"]["en"]["benign"] == xstest_safe  # XSTest's rows labelled safe
    pairs = read_jsonl(repo / "data/prepared/train/hi/safety.jsonl")
    assert all(r["chosen"] and r["rejected"] and r["response"] == r["chosen"] for r in pairs)

    translated = read_jsonl(repo / "data/generated/translate/ultrafeedback/records.jsonl")
    assert {r["language"] for r in translated} == {"fr", "es", "hi", "ar", "ru"}
    assert all(r["translated_from"] == "en" and r["backend"] == "mt" for r in translated)
    assert len({r["source_id"] for r in translated}) == 4
    # The answer's line breaks survive a translation made line by line.
    tea = [r for r in translated if r["chosen"].count("\n") == 3]
    assert len(tea) == 5


@needs_xsafety
def test_a_rerun_sends_no_request_and_translates_nothing(paper_data):
    repo, server, answered, _ = paper_data
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, KEY)
        run_in(["dvc", "repro", "-f", "-s", "synthesize@safety"], repo)
        run_in(["dvc", "repro", "-f", "-s", "translate@ultrafeedback"], repo)
        status = run_in(["dvc", "status", "prepare"], repo)
    assert call(f"{server}/stats")["answered"] == answered
    usage = report(repo, "synthesize/safety")["usage"]
    assert usage["safe"]["requests"] == usage["judge"]["requests"] == 0
    assert usage["safe"]["cached"] > 0
    assert report(repo, "translate/ultrafeedback")["usage"]["lines_translated"] == 0
    # The same records again: prepare is still up to date.
    assert "up to date" in status


def test_an_llm_translates_through_the_endpoint_and_a_rerun_asks_nothing(teacher, tmp_path):
    from mixmerge.config.translations import LLMTranslatorConfig
    from mixmerge.core.records import Record
    from mixmerge.translation import make_translator, translate_records

    config = LLMTranslatorConfig(
        kind="llm", base_url=f"{teacher}/v1", model="rule", api_key_env=KEY_ENV,
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    records = [Record("u:en:c:1", "u", "en", "general", "c", "Hi?\nTwo lines.", response="Yes.")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, KEY)
        first = make_translator(config, "translations.t.translator")
        rows, _ = translate_records("t", records, ["prompt", "response"], ["en", "hi", "ar"],
                                    first, "llm")  # fmt: skip
        again = make_translator(config, "translations.t.translator")
        translate_records("t", records, ["prompt", "response"], ["hi", "ar"], again, "llm")
    # An LLM is given the whole text, line breaks and all.
    assert [r["prompt"] for r in rows] == ["[hi] Hi?\nTwo lines.", "[ar] Hi?\nTwo lines."]
    assert first.usage()["requests"] == 4 and first.usage()["completion_tokens"] > 0
    assert again.usage()["requests"] == 0 and again.usage()["cached"] == 4
