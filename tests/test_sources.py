from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from mixmerge.core.errors import StageError
from mixmerge.core.records import prompt_key
from mixmerge.data.sources import read_source
from mixmerge.validation import validate_params
from tests.conftest import SHARED_DATA

STUDY = ["en", "fr", "es", "hi", "ar", "ru"]


def source(**entry):
    """A validated source entry, in a study of the paper's six languages."""
    raw = {"languages": STUDY, "data": {"sources": {"s": entry}}}
    return validate_params(raw).data.sources["s"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return str(path)


def test_column_mapping_with_a_language_column_and_language_values(tmp_path):
    rows = [
        {
            "q": "How do I pick a lock?",
            "good": "I can't help.",
            "bad": "Use a pin.",
            "lang": "English",
        },
        {"q": "Comment crocheter ?", "good": "Non.", "bad": "Une épingle.", "lang": "fr"},
        {"q": "¿Cómo forzar?", "good": "No.", "bad": "Con una horquilla.", "lang": "ES"},
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    config = source(
        kind="files",
        files=path,
        objective="safety",
        use="train",
        languages=["en", "fr", "es"],
        language_values={"English": "en"},
        columns={"prompt": "q", "chosen": "good", "rejected": "bad", "language": "lang"},
    )
    output = read_source("pairs", config, STUDY)
    records = {r.language: r for r in output.records["train"]}
    assert set(records) == {"en", "fr", "es"}
    assert records["en"].chosen == "I can't help." and records["en"].rejected == "Use a pin."
    assert records["en"].response == "I can't help.", "the chosen answer is the SFT target"
    assert records["fr"].objective == "safety" and records["fr"].source == "pairs"
    assert records["fr"].category == "pairs", "without a category column: the file's name"


def test_a_wide_file_gives_one_record_per_language_column(tmp_path):
    path = tmp_path / "wide.csv"
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "prompt_en", "prompt_ru", "prompt_hi"])
        writer.writerow([1, "Where is the station?", "Где вокзал?", "स्टेशन कहाँ है?"])
        writer.writerow([2, "What time is it?", "Который час?", "कितने बजे हैं?"])
    config = source(
        kind="files",
        files=str(path),
        objective="general",
        use="eval",
        languages=["en", "ru", "hi"],
        columns={"prompt": "prompt_{lang}"},
    )
    output = read_source("wide", config, STUDY)
    by_language = Counter(r.language for r in output.records["eval"])
    assert by_language == {"en": 2, "ru": 2, "hi": 2}
    assert {r.prompt for r in output.records["eval"] if r.language == "ru"} == {
        "Где вокзал?",
        "Который час?",
    }


def test_a_wide_row_missing_one_language_says_which(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("prompt_en,prompt_fr\nHello?,Bonjour ?\nGood night?,\n", encoding="utf-8")
    config = source(
        kind="files",
        files=str(path),
        objective="general",
        use="eval",
        languages=["en", "fr"],
        columns={"prompt": "prompt_{lang}"},
    )
    output = read_source("wide", config, STUDY)
    assert Counter(r.language for r in output.records["eval"]) == {"en": 2, "fr": 1}
    assert output.report["skipped"] == {"empty prompt (fr)": 1}
    assert output.report["examples"]["empty prompt (fr)"] == [f"{path} row 2"]


def test_numbers_languages_with_spaces_and_category_names_are_normalised(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text(
        "q,a,lang,cat\nHow much is 2+2?,4,English ,maths\nAnd 3+3?,6,en,Maths\n", encoding="utf-8"
    )
    config = source(
        kind="files",
        files=str(path),
        objective="general",
        use="train",
        language_values={"English": "en"},
        category_values={"Maths": "maths"},
        columns={"prompt": "q", "response": "a", "language": "lang", "category": "cat"},
        languages=["en"],
    )
    records = read_source("rows", config, STUDY).records["train"]
    assert [(r.response, r.language, r.category) for r in records] == [
        ("4", "en", "maths"),
        ("6", "en", "maths"),
    ]


def test_both_splits_keep_a_prompt_whatever_the_share(tmp_path):
    path = write_jsonl(tmp_path / "two.jsonl", [{"p": "one", "r": "a"}, {"p": "two", "r": "b"}])
    config = source(
        kind="files",
        files=path,
        objective="general",
        language="es",
        eval_share=0.9,
        columns={"prompt": "p", "response": "r"},
    )
    records = read_source("two", config, STUDY).records
    assert (len(records["train"]), len(records["eval"])) == (1, 1)


def test_malformed_rows_are_skipped_counted_and_located(tmp_path):
    rows = [
        {"p": "fine prompt", "r": "fine answer", "l": "en"},
        {"p": "   ", "r": "answer to nothing", "l": "en"},
        {"p": "no answer", "r": None, "l": "en"},
        {"p": "which language?", "r": "who knows", "l": "klingon"},
        {"p": "FINE   prompt", "r": "the same prompt again", "l": "en"},
        {"p": "not requested", "r": "a German row", "l": "de"},
        {"p": "another fine prompt", "r": "another answer", "l": "en"},
    ]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    config = source(
        kind="files",
        files=path,
        objective="general",
        use="train",
        languages=["en"],
        columns={"prompt": "p", "response": "r", "language": "l"},
    )
    output = read_source("rows", config, STUDY)
    assert [r.prompt for r in output.records["train"]] == ["fine prompt", "another fine prompt"]
    report = output.report
    assert report["rows"] == 7
    assert report["skipped"] == {
        "empty prompt": 1,
        "empty response": 1,
        "unknown language 'klingon'": 1,
        "duplicate prompt": 1,
    }
    assert report["filtered"] == {"language de not requested": 1}
    assert report["examples"]["empty prompt"] == [f"{path} line 2"]


def test_preference_pairs_must_differ(tmp_path):
    rows = [
        {"p": "a", "c": "same", "x": "same"},
        {"p": "b", "c": "good", "x": "bad"},
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    config = source(
        kind="files",
        files=path,
        objective="general",
        use="train",
        language="en",
        columns={"prompt": "p", "chosen": "c", "rejected": "x"},
    )
    output = read_source("pairs", config, STUDY)
    assert [r.prompt for r in output.records["train"]] == ["b"]
    assert output.report["skipped"] == {"chosen equals rejected": 1}


def test_chat_columns_give_their_last_message_of_the_right_role(tmp_path):
    row = {
        "prompt": "Name a colour.",
        "chosen": [
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
        ],
        "rejected": [
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Five."},
        ],
    }
    path = write_jsonl(tmp_path / "chat.jsonl", [row, {**row, "prompt": "Name another colour."}])
    config = source(
        kind="files",
        files=path,
        objective="general",
        language="en",
        use="train",
        columns={"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"},
    )
    record = read_source("chat", config, STUDY).records["train"][0]
    assert (record.chosen, record.rejected) == ("Blue.", "Five.")


def test_a_requested_language_without_records_is_an_error_naming_both(tmp_path):
    path = write_jsonl(tmp_path / "en.jsonl", [{"p": "only English", "l": "en"}])
    config = source(
        kind="files",
        files=path,
        objective="safety",
        use="eval",
        columns={"prompt": "p", "language": "l"},
    )
    with pytest.raises(
        StageError, match=r"data\.sources\.only: no usable records for fr, es, hi, ar, ru"
    ):
        read_source("only", config, STUDY)


def test_a_missing_column_is_an_error_with_a_suggestion(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"prompt": "p", "language": "en"}])
    config = source(
        kind="files",
        files=path,
        objective="safety",
        use="eval",
        columns={"prompt": "promt", "language": "language"},
    )
    with pytest.raises(
        StageError, match=r"columns\.prompt: no column 'promt'.*did you mean 'prompt'"
    ):
        read_source("x", config, STUDY)


def test_a_glob_that_matches_nothing_is_an_error(tmp_path):
    config = source(
        kind="files",
        files=str(tmp_path / "*.csv"),
        objective="safety",
        use="eval",
        language="en",
        columns={"prompt": "p"},
    )
    with pytest.raises(StageError, match="no file matches"):
        read_source("nothing", config, STUDY)


def test_a_local_dataset_folder_loads_as_an_hf_source(tmp_path):
    folder = tmp_path / "dataset"
    (folder / "data").mkdir(parents=True)
    rows = [{"text": f"prompt {i}", "answer": f"answer {i}", "language": "hi"} for i in range(20)]
    write_jsonl(folder / "data" / "train.jsonl", rows)
    config = source(
        kind="hf",
        dataset=str(folder),
        split="train",
        objective="general",
        eval_share=0.25,
        seed=3,
        columns={"prompt": "text", "response": "answer", "language": "language"},
        languages=["hi"],
    )
    output = read_source("local", config, STUDY)
    train, held_out = output.records["train"], output.records["eval"]
    assert (len(train), len(held_out)) == (15, 5)
    assert not {r.prompt for r in train} & {r.prompt for r in held_out}
    again = read_source("local", config, STUDY)
    assert again.records == output.records, "the split is seeded"


def test_an_unreachable_hub_dataset_is_a_clear_error():
    config = source(
        kind="hf",
        dataset="no-such-org/no-such-dataset",
        objective="safety",
        use="eval",
        language="en",
        columns={"prompt": "prompt"},
    )
    with pytest.raises(
        StageError, match="data.sources.hub: cannot load no-such-org/no-such-dataset"
    ):
        read_source("hub", config, STUDY)


def test_max_per_language_keeps_a_seeded_sample(tmp_path):
    rows = [{"p": f"prompt {i}", "r": "a"} for i in range(30)]
    path = write_jsonl(tmp_path / "many.jsonl", rows)
    config = source(
        kind="files",
        files=path,
        objective="general",
        language="fr",
        use="train",
        max_per_language=10,
        columns={"prompt": "p", "response": "r"},
    )
    output = read_source("many", config, STUDY)
    assert len(output.records["train"]) == 10
    assert output.report["filtered"] == {"over max_per_language": 20}


needs_xsafety = pytest.mark.skipif(
    not (SHARED_DATA / "xsafety").is_dir(), reason="XSafety files not present"
)


def xsafety(**extra):
    """The XSafety folder as published: headerless CSVs, one folder per language."""
    folder = SHARED_DATA / "xsafety"
    return source(
        kind="files",
        objective="safety",
        use="eval",
        files_by_language={code: str(folder / code / "*.csv") for code in STUDY},
        read_options={"header": None},
        columns={"prompt": "0"},
        **extra,
    )


@needs_xsafety
def test_xsafety_keeps_every_language_and_says_what_it_skipped():
    output = read_source("xsafety", xsafety(), STUDY)
    records = output.records["eval"]
    per_language = Counter(r.language for r in records)
    # Three files of 200 prompts per language; what is missing is reported, not lost.
    skipped = sum(output.report["skipped"].values())
    assert sum(per_language.values()) + skipped == output.report["rows"] == 6 * 600
    assert set(per_language) == set(STUDY) and min(per_language.values()) >= 590
    assert output.report["skipped"] == {"duplicate prompt": 6, "empty prompt": 1}
    assert not any(r.prompt.startswith("\ufeff") for r in records), "byte-order marks removed"
    assert len({(r.language, prompt_key(r.prompt)) for r in records}) == len(records)
    assert any("\n" in r.prompt for r in records), "multi-line records stay whole"
    assert len({r.category for r in records if r.language == "en"}) == 3


@needs_xsafety
def test_xsafety_file_names_map_to_one_set_of_categories():
    names = {
        "Crimes_And_Illegal_Activities_en": "crimes",
        "Crimes_And_Illegal_Activities": "crimes",
        "Crimes_And_Illegal_Activitie": "crimes",
        "Insult_n": "insult",
        "Insult": "insult",
        "Physical_Harm_n": "physical_harm",
        "Physical_Harm": "physical_harm",
    }
    records = read_source("xsafety", xsafety(category_values=names), STUDY).records["eval"]
    for code in STUDY:
        categories = {r.category for r in records if r.language == code}
        assert categories == {"crimes", "insult", "physical_harm"}


def test_a_malformed_json_line_is_skipped_and_located_by_its_line(tmp_path):
    path = tmp_path / "questions.jsonl"
    good = [json.dumps({"q": f"Question {i}?", "l": "en"}) for i in range(40)]
    path.write_text("\n".join(good[:3] + ['{"q": "cut off', ""] + good[3:]) + "\n", "utf-8")
    config = source(
        kind="files",
        files=str(path),
        objective="general",
        use="eval",
        languages=["en"],
        columns={"prompt": "q", "language": "l"},
    )
    output = read_source("q", config, STUDY)
    assert len(output.records["eval"]) == 40  # every good line, the blank one not a row
    assert output.report["rows"] == 41
    assert output.report["skipped"] == {"malformed JSON line": 1}
    assert output.report["examples"]["malformed JSON line"] == [f"{path} line 4"]


def test_a_source_mostly_malformed_fails_past_its_share(tmp_path):
    path = tmp_path / "broken.jsonl"
    lines = [json.dumps({"q": "A fine question?", "l": "en"}), "not json", "[1, 2]", "{"]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    entry = dict(
        kind="files", files=str(path), objective="general", use="eval", languages=["en"],
        columns={"prompt": "q", "language": "l"},
    )  # fmt: skip
    with pytest.raises(StageError, match=r"3 of 4 lines are not JSON objects.*broken.jsonl line 2"):
        read_source("b", source(**entry), STUDY)
    output = read_source("b", source(**entry, max_malformed_share=0.8), STUDY)
    assert output.report["skipped"] == {"malformed JSON line": 3}


def test_nested_fields_are_read_by_dotted_path(tmp_path):
    rows = [
        {"turns": [{"content": "How do I bake bread?"}, {"content": "Knead, rise, bake."}]},
        {"turns": [{"content": "How do I boil an egg?"}, {"content": "Ten minutes."}]},
    ]
    config = source(
        kind="files",
        files=write_jsonl(tmp_path / "chat.jsonl", rows),
        objective="general",
        use="train",
        language="en",
        columns={"prompt": "turns.0.content", "response": "turns.1.content"},
    )
    output = read_source("chat", config, STUDY)
    assert [(r.prompt, r.response) for r in output.records["train"]] == [
        ("How do I bake bread?", "Knead, rise, bake."),
        ("How do I boil an egg?", "Ten minutes."),
    ]


def test_a_wide_file_names_every_language_it_lacks_and_the_language_of_a_duplicate(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("\ufeffprompt_en,prompt_fr\nHello?,Bonjour ?\nHello?,Salut ?\n", "utf-8")
    entry = dict(kind="files", files=str(path), objective="safety", use="eval")
    columns = {"prompt": "prompt_{lang}"}
    missing = source(**entry, languages=["en", "fr", "hi", "ar"], columns=columns)
    with pytest.raises(StageError, match=r"no column for hi, ar in .*'prompt_hi', 'prompt_ar'"):
        read_source("wide", missing, STUDY)
    output = read_source("wide", source(**entry, languages=["en", "fr"], columns=columns), STUDY)
    assert output.report["skipped"] == {"duplicate prompt (en)": 1}


def test_a_chat_cell_without_roles_is_skipped_with_how_to_map_it(tmp_path):
    rows = [{"turns": [{"content": f"Question {i}?"}, {"content": "Answer."}]} for i in range(3)]
    entry = dict(
        kind="files", files=write_jsonl(tmp_path / "turns.jsonl", rows), objective="general",
        use="eval", language="en",
    )  # fmt: skip
    with pytest.raises(StageError, match=r"no usable records for en .*turns.0.content"):
        read_source("t", source(**entry, columns={"prompt": "turns"}), STUDY)
    output = read_source("t", source(**entry, columns={"prompt": "turns.0.content"}), STUDY)
    assert [r.prompt for r in output.records["eval"]] == [f"Question {i}?" for i in range(3)]


def test_where_keeps_the_rows_it_names_and_counts_the_others(tmp_path):
    rows = [{"prompt": f"How do I kill process {i}?", "label": label}
            for i, label in enumerate(["safe", "unsafe", "safe", "contrast", "safe"])]  # fmt: skip
    config = source(
        kind="files",
        files=write_jsonl(tmp_path / "xstest.jsonl", rows),
        objective="benign",
        use="eval",
        language="en",
        where={"label": ["safe"]},
        columns={"prompt": "prompt"},
    )
    output = read_source("xstest", config, STUDY)
    assert len(output.records["eval"]) == 3
    assert output.report["filtered"] == {"label not in ['safe']": 2}
    absent = source(**(config.model_dump(by_alias=True) | {"where": {"lable": ["safe"]}}))
    with pytest.raises(StageError, match=r"where.lable: no column 'lable'.*did you mean 'label'"):
        read_source("xstest", absent, STUDY)


def test_validate_reads_the_language_column_for_every_requested_language(tmp_path):
    from mixmerge.data.sources import check_sources

    rows = [{"q": "Hello?", "lang": "English"}, {"q": "Bonjour ?", "lang": "fr"},
            {"q": "Hallo?", "lang": "German"}, {"q": "Salut ?", "lang": "fr"}]  # fmt: skip
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    raw = {
        "languages": STUDY,
        "data": {"sources": {"mixed": {
            "kind": "files", "files": path, "objective": "general", "use": "eval",
            "languages": ["en", "fr", "hi"], "language_values": {"English": "en"},
            "columns": {"prompt": "q", "language": "lang"},
        }}},
    }  # fmt: skip
    params = validate_params(raw)
    problems = check_sources(params.data.sources, params.languages)
    assert problems == [
        "data.sources.mixed.columns.language: no row in hi (rows by language: fr (2), en (1))",
        "data.sources.mixed.columns.language: values that are no ISO 639-1 code, skipped by "
        "prepare: 'German' (1); map them with `language_values`",
    ]
    # What prepare then does with them: counted, and the missing language an error.
    with pytest.raises(StageError, match="no usable records for hi"):
        read_source("mixed", params.data.sources["mixed"], STUDY)


def test_a_prompt_only_source_trains_only_through_a_synthesis(tmp_path):
    entry = {"kind": "files", "files": "seeds.jsonl", "objective": "safety", "use": "both",
             "language": "en", "columns": {"prompt": "prompt"}}  # fmt: skip
    raw = {"languages": STUDY, "data": {"sources": {"seeds": entry}}}
    with pytest.raises(Exception, match=r"data.sources.seeds: a source used for training needs"):
        validate_params(raw)
    writer = {"kind": "llm", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    raw["syntheses"] = {"safety": {"source": "seeds", "safe": writer, "harmful": writer,
                                   "judge": {"kind": "rule"}}}  # fmt: skip
    assert validate_params(raw).syntheses["safety"].source == "seeds"
    raw["syntheses"]["safety"]["source"] = "sedes"
    with pytest.raises(Exception, match=r"syntheses.safety.source: no data source.*'seeds'"):
        validate_params(raw)


def test_dev_is_held_out_of_eval_and_train_and_leaves_eval_as_it_was(tmp_path):
    rows = [{"q": f"Question number {i}?", "a": f"Answer {i}."} for i in range(40)]
    path = write_jsonl(tmp_path / "qa.jsonl", rows)
    entry = {"kind": "files", "files": path, "objective": "general", "language": "fr",
             "eval_share": 0.25, "columns": {"prompt": "q", "response": "a"}}  # fmt: skip
    plain = read_source("qa", source(**entry), STUDY).records
    with_dev = read_source("qa", source(**entry, dev_share=0.2), STUDY).records
    assert with_dev["eval"] == plain["eval"] and len(with_dev["eval"]) == 10
    assert len(with_dev["dev"]) == 8 and len(with_dev["train"]) == 22
    prompts = {split: {r.prompt for r in rows} for split, rows in with_dev.items()}
    assert not prompts["dev"] & (prompts["eval"] | prompts["train"])
    assert prompts["dev"] | prompts["train"] == {r.prompt for r in plain["train"]}
    # An eval-only source gives its dev share and keeps the rest for eval.
    judged = read_source("qa", source(**entry | {"use": "eval"}, dev_share=0.25), STUDY).records
    assert len(judged["dev"]) == 10 and len(judged["eval"]) == 30 and not judged["train"]
    with pytest.raises(Exception, match="dev prompts are held out like eval's"):
        source(**entry | {"use": "train"}, dev_share=0.1)
    with pytest.raises(Exception, match="leave nothing to train on"):
        source(**entry, dev_share=0.75)


def test_prepare_keeps_a_dev_prompt_out_of_every_other_split(tmp_path):
    from mixmerge.data.preparation import prepare_records
    from mixmerge.validation import validate_params

    rows = [{"q": f"Question number {i}?", "a": f"Answer {i}."} for i in range(20)]
    held = write_jsonl(tmp_path / "held.jsonl", rows)
    trained = write_jsonl(tmp_path / "trained.jsonl", rows)
    common = {"kind": "files", "objective": "general", "language": "en",
              "columns": {"prompt": "q", "response": "a"}}  # fmt: skip
    params = validate_params({"languages": STUDY, "data": {"sources": {
        "held": common | {"files": held, "use": "eval", "dev_share": 0.5},
        "trained": common | {"files": trained, "use": "train"},
    }}})  # fmt: skip
    splits, _, report = prepare_records(params)
    assert len(splits["dev"]) == 10 and len(splits["eval"]) == 10 and not splits["train"]
    assert report["dropped_across_sources"] == {"prompt also in eval": 10, "prompt also in dev": 10}
    assert report["counts"]["dev"]["en"] == {"general": 10}
