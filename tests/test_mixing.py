from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest
from mixmerge.stages import mix, prepare

from mixmerge import paths
from mixmerge.core.errors import StageError
from mixmerge.core.records import Record
from mixmerge.data import mixing
from mixmerge.data.mixtures import build_mixture
from mixmerge.data.preparation import prepare_records
from mixmerge.data.prepared import read_split
from mixmerge.validation import validate_params

LANGUAGES = ["en", "fr", "es", "hi", "ar", "ru"]


@pytest.mark.parametrize("share", [0.0, 0.05, 0.15, 0.3, 0.333, 0.5, 0.77, 1.0])
@pytest.mark.parametrize("size", [50, 61, 120, 997])
def test_realised_share_is_within_one_point_and_as_close_as_whole_examples_allow(share, size):
    for counts in (
        mixing.allocate(LANGUAGES, share, size_per_language=size),
        mixing.allocate(LANGUAGES, share, size_total=size * 6 + 5),
    ):
        total = sum(sum(c.values()) for c in counts.values())
        assert abs(mixing.realised_share(counts) - share) <= min(0.01, 0.5 / total + 1e-12)
        for per_language in counts.values():
            n = per_language["safety"] + per_language["general"]
            assert abs(per_language["safety"] - share * n) < 1


def test_sizes_per_language_and_in_total():
    per_language = mixing.allocate(LANGUAGES, 0.15, size_per_language=120)
    assert per_language["hi"] == {"safety": 18, "general": 102}
    total = mixing.allocate(["en", "fr", "es"], 0.15, size_total=100)
    assert [sum(c.values()) for c in total.values()] == [34, 33, 33]
    assert sum(c["safety"] for c in total.values()) == 15


def test_a_share_that_whole_examples_cannot_meet_is_an_error():
    counts = mixing.allocate(["en"], 0.15, size_per_language=10)
    with pytest.raises(StageError, match="realised safety share would be 0.200"):
        mixing.check_share(0.15, counts)


def _pool(n_safety: int, n_general: int, language: str = "en") -> list[Record]:
    def record(objective, i):
        return Record(
            id=f"{language}-{objective}-{i:03d}",
            source="test",
            language=language,
            objective=objective,
            category="c",
            prompt=f"{objective} {i}",
            response="r",
            chosen="c",
            rejected="x",
        )

    return [record("safety", i) for i in range(n_safety)] + [
        record("general", i) for i in range(n_general)
    ]


def test_selection_is_seeded_without_replacement_and_ignores_file_order():
    pool = _pool(30, 80)
    counts = {"en": {"safety": 12, "general": 68}}
    chosen = mixing.select(pool, counts, seed=7)
    assert len({r.id for r in chosen}) == 80
    assert Counter(r.objective for r in chosen) == {"safety": 12, "general": 68}
    assert mixing.select(list(reversed(pool)), counts, seed=7) == chosen
    assert mixing.select(pool, counts, seed=8) != chosen
    assert [r.objective for r in chosen[:12]] != ["safety"] * 12, "objectives are interleaved"


def test_asking_for_more_than_exists_says_how_many_exist():
    pool = _pool(5, 80) + _pool(3, 80, language="fr")
    counts = {"en": {"safety": 12, "general": 10}, "fr": {"safety": 12, "general": 10}}
    with pytest.raises(StageError) as caught:
        mixing.select(pool, counts, seed=0)
    message = str(caught.value)
    assert "12 safety in en (there are 5)" in message and "12 safety in fr (there are 3)" in message


# --- the prepare and mix stages, on files --------------------------------------------------


@pytest.fixture
def prepared(tmp_path, small_raw):
    params = validate_params(small_raw)
    prepare.run(params, root=tmp_path)
    return params, tmp_path


def test_prepare_writes_every_split_language_and_objective(prepared):
    params, root = prepared
    for split, objectives in (
        ("train", {"general", "safety"}),
        ("eval", {"general", "safety", "benign"}),
        ("warmup", {"general", "safety"}),
    ):
        for language in params.languages:
            found = {p.stem for p in (root / paths.PREPARED / split / language).glob("*.jsonl")}
            assert found == objectives
    report = json.loads((root / paths.PREPARE_REPORT).read_text())
    assert report["counts"]["train"]["hi"] == {"safety": 60, "general": 60}
    assert (root / paths.PREPARED / "corpus.jsonl").stat().st_size > 0


def test_a_failed_prepare_leaves_no_records_that_look_current(prepared, small_raw, tmp_path):
    params, root = prepared
    small_raw["data"]["sources"]["missing"] = {
        "kind": "files",
        "files": str(tmp_path / "nowhere" / "*.jsonl"),
        "objective": "general",
        "use": "eval",
        "language": "en",
        "columns": {"prompt": "p"},
    }
    with pytest.raises(StageError, match="no file matches"):
        prepare.run(validate_params(small_raw), root=root)
    assert not (root / paths.PREPARED).exists()
    assert not (root / paths.PREPARE_REPORT).exists()


def test_a_mixture_realises_its_share_and_keeps_both_forms_aligned(prepared):
    params, root = prepared
    manifest = mix.run(params, "mix15", root=root)
    assert manifest["realised"]["safety_share"] == pytest.approx(0.15, abs=0.01)
    assert manifest["counts"]["fr"] == {"safety": 6, "general": 34}
    folder = root / paths.MIXTURES / "mix15"
    sft = [json.loads(line) for line in (folder / "sft.jsonl").open()]
    preference = [json.loads(line) for line in (folder / "preference.jsonl").open()]
    assert len(sft) == len(preference) == 120
    assert [row["messages"][0]["role"] for row in sft[:3]] == ["user"] * 3
    assert {row["id"] for row in sft} == {row["id"] for row in preference}
    assert json.loads((root / paths.MIXTURE_MANIFESTS / "mix15.json").read_text()) == manifest
    train_ids = {
        json.loads(line)["id"]
        for path in (root / paths.PREPARED / "train").rglob("*.jsonl")
        for line in path.open()
    }
    assert {row["id"] for row in sft} <= train_ids


def test_a_mixture_asking_for_too_much_fails_and_keeps_the_previous_output(prepared):
    params, root = prepared
    mix.run(params, "mix100", root=root)
    before = (root / paths.MIXTURES / "mix100" / "sft.jsonl").read_bytes()
    raw = params.model_dump(exclude_none=True)
    raw["mixtures"]["mix100"]["size_per_language"] = 61
    with pytest.raises(StageError, match=r"61 safety in en \(there are 60\)"):
        mix.run(validate_params(raw), "mix100", root=root)
    assert (root / paths.MIXTURES / "mix100" / "sft.jsonl").read_bytes() == before
    assert not list((root / paths.MIXTURES).glob(".*tmp*"))


def test_a_mixture_of_one_form_draws_from_records_with_that_form(prepared):
    params, root = prepared
    raw = params.model_dump(exclude_none=True)
    raw["mixtures"]["mix15"]["forms"] = ["sft"]
    params = validate_params(raw)
    pool = [
        dataclasses.replace(r, chosen=None, rejected=None)
        for r in read_split(root / paths.PREPARED, "train", params.languages)
    ]
    chosen, manifest = build_mixture("mix15", params.mixtures["mix15"], params.languages, pool)
    assert len(chosen) == manifest["realised"]["examples"] == 120
    raw["mixtures"]["mix15"]["forms"] = ["sft", "preference"]
    with pytest.raises(StageError, match="train records with sft and preference"):
        build_mixture("mix15", validate_params(raw).mixtures["mix15"], params.languages, pool)


def test_an_eval_prompt_of_one_source_never_reaches_training_from_another(tmp_path, small_raw):
    small_raw["languages"] = ["en"]
    held_out = next(
        r.prompt
        for r in prepare_records(validate_params(small_raw))[0]["eval"]
        if r.objective == "safety"
    )
    path = tmp_path / "rows.jsonl"
    rows = [{"p": held_out, "r": "No."}, {"p": "Another prompt", "r": "Fine."}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    small_raw["data"]["sources"]["extra"] = {
        "kind": "files",
        "files": str(path),
        "objective": "safety",
        "use": "train",
        "language": "en",
        "columns": {"prompt": "p", "response": "r"},
    }
    splits, _, report = prepare_records(validate_params(small_raw))
    assert held_out not in {r.prompt for r in splits["train"]}
    assert "Another prompt" in {r.prompt for r in splits["train"]}
    assert report["dropped_across_sources"] == {"prompt also in eval": 1}
