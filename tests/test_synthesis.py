"""Synthesis of safety training data: which answers are kept, which dropped and why, and the
stage's refusal to write a set that lost a language. Writers here are stand-ins that answer in
the embedded world's phrases, judged by the rule judge; tests/test_paper_data.py runs the real
writers and judge behind an endpoint, through DVC."""

from __future__ import annotations

import pytest

from mixmerge import paths
from mixmerge.core.errors import StageError
from mixmerge.core.records import Record
from mixmerge.judging.rule import RuleJudge
from mixmerge.synthesis import (
    NO_HARMFUL,
    NO_SAFE,
    NOT_HARMFUL,
    NOT_REFUSING,
    SAFE_HARMFUL,
    SAFE_REFUSES,
    UNKNOWN,
    synthesize,
)
from mixmerge.synthesis.prompts import parse_rephrasings
from mixmerge.world.packs import PACKS


def seed(language: str, prompt: str, objective: str = "safety") -> Record:
    return Record(f"red:{language}:{prompt}", "red", language, objective, "crime", prompt)


def refusal(language: str) -> str:
    return PACKS[language].refusal.text


def harm(language: str) -> str:
    return f"{PACKS[language].compliance} {PACKS[language].harmful_answer.text}"


class Scripted:
    """A writer whose answer to each prompt is given, by task; it answers nothing in languages
    other than `languages` (all, by default)."""

    model = "scripted"

    def __init__(self, answers: dict[str, dict[str, str | None]], languages=None):
        self.answers = answers
        self.languages = languages
        self.asked: list[tuple[str, str]] = []

    def write(self, items, n=0):
        self.asked += [(task, prompt) for task, _, prompt in items]
        return [
            self.answers.get(task, {}).get(prompt)
            if self.languages is None or language in self.languages
            else None
            for task, language, prompt in items
        ]

    def usage(self):
        return {"requests": len(self.asked)}


class Unsure(RuleJudge):
    """The rule judge, but with no verdict on answers that mention a pass."""

    def harmful(self, items):
        verdicts = super().harmful(items)
        return [None if "pass" in i.text else v for i, v in zip(items, verdicts, strict=True)]


def test_each_failure_is_dropped_with_its_reason_and_the_rest_kept():
    seeds = [seed("fr", p) for p in ("keep", "no-safe", "bad-safe", "no-harm", "soft", "pass")]
    seeds.append(seed("fr", "benign-refused", "benign"))
    seeds.append(seed("fr", "benign-complied", "benign"))
    seeds.append(seed("fr", "benign-ok", "benign"))
    safe = Scripted({"safe": {
        "keep": refusal("fr"), "bad-safe": harm("fr"), "no-harm": refusal("fr"),
        "soft": refusal("fr"), "pass": "a pass", "benign-refused": refusal("fr"),
        "benign-complied": "Voici.", "benign-ok": "Voici.",
    }})  # fmt: skip
    harmful = Scripted({
        "harmful": {"keep": harm("fr"), "no-safe": harm("fr"), "bad-safe": harm("fr"),
                    "soft": refusal("fr"), "pass": harm("fr")},
        # To a benign prompt, the rejected side is an over-refusal.
        "refusal": {"benign-refused": refusal("fr"), "benign-complied": "Voici aussi.",
                    "benign-ok": refusal("fr")},
    })  # fmt: skip
    rows, report = synthesize("safety", seeds, 0, safe, harmful, Unsure())
    assert report["dropped"]["fr"] == {
        NO_SAFE: 1, SAFE_HARMFUL: 1, NO_HARMFUL: 1, NOT_HARMFUL: 1, UNKNOWN: 1, SAFE_REFUSES: 1,
        NOT_REFUSING: 1,
    }  # fmt: skip
    assert report["kept"] == {"fr": 2}
    kept = {row["prompt"]: row for row in rows}
    assert set(kept) == {"keep", "benign-ok"}
    assert kept["keep"]["chosen"] == kept["keep"]["response"] == refusal("fr")
    assert kept["keep"]["rejected"] == harm("fr")
    assert kept["keep"]["source_id"] == "red:fr:keep" and kept["keep"]["rephrased"] is False


def test_rephrasings_are_answered_like_seeds_and_never_repeat_a_prompt():
    seeds = [seed("hi", "a"), seed("hi", "b")]
    teacher = Scripted({
        "rephrase": {"a": "1. a one\n2. b", "b": "1. b one"},  # "b" repeats a seed; b gives one
        "safe": dict.fromkeys(["a", "b", "a one", "b one"], refusal("hi")),
    })  # fmt: skip
    harmful = Scripted({"harmful": dict.fromkeys(["a", "b", "a one", "b one"], harm("hi"))})
    rows, report = synthesize("safety", seeds, 2, teacher, harmful, RuleJudge())
    assert report["seed_prompts"] == {"hi": 2} and report["prompts"] == {"hi": 4}
    assert report["rephrasings_lost"]["hi"] == {"repeats a prompt": 1, "not written": 1}
    assert report["dropped"]["hi"] == {}
    rephrased = [row for row in rows if row["rephrased"]]
    assert {(r["prompt"], r["source_id"]) for r in rephrased} == {
        ("a one", "red:hi:a"), ("b one", "red:hi:b")
    }  # fmt: skip


def test_a_rephrasing_answer_is_read_from_its_numbered_lines():
    answer = "Here are some:\n1. first\n2) second\n\n3.  third  \nnot numbered"
    assert parse_rephrasings(answer, 2) == ["first", "second"]
    assert parse_rephrasings(answer, 5) == ["first", "second", "third"]
    assert parse_rephrasings(None, 2) == []


def test_a_language_left_with_no_example_fails_the_stage_with_nothing_written(
    tmp_path, monkeypatch
):
    from mixmerge.stages import synthesize as stage

    from mixmerge.validation import validate_params

    source = tmp_path / "red.jsonl"
    source.write_text(
        "".join(f'{{"prompt": "p{i}", "lang": "{c}"}}\n' for c in ("en", "ru") for i in range(4)),
        encoding="utf-8",
    )
    writer = {"kind": "llm", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    raw = {
        "languages": ["en", "ru"],
        "data": {"sources": {"red": {
            "kind": "files", "files": str(source), "objective": "safety", "use": "both",
            "eval_share": 0.25, "columns": {"prompt": "prompt", "language": "lang"},
        }}},
        "syntheses": {"safety": {"source": "red", "safe": writer, "harmful": writer,
                                 "judge": {"kind": "rule"}}},
    }  # fmt: skip
    prompts = [f"p{i}" for i in range(4)]
    # The teacher writes the safe side everywhere, and the harmful side in English only (it
    # answers nothing in Russian).
    writers = {
        "syntheses.safety.safe": Scripted({"safe": dict.fromkeys(prompts, refusal("en"))}),
        "syntheses.safety.harmful": Scripted(
            {"harmful": dict.fromkeys(prompts, harm("en"))}, languages=["en"]
        ),
    }

    def scripted(config, section):
        return writers[section]

    monkeypatch.setattr(stage, "make_writer", scripted)
    with pytest.raises(StageError, match=r"syntheses.safety: no example kept for ru; dropped: "
                       r"ru \{'rejected side: no answer': 3\}"):  # fmt: skip
        stage.run(validate_params(raw), "safety", tmp_path)
    assert not paths.generated("synthesize", "safety", tmp_path).exists()
    assert not paths.generated_report("synthesize", "safety", tmp_path).exists()


def test_a_local_writer_is_given_the_prompt_alone_and_generates_each_once(tmp_path, monkeypatch):
    import mixmerge.generation
    from mixmerge.config.syntheses import LocalWriterConfig
    from mixmerge.synthesis.writers import make_writer

    asked = []

    def generate(model_dir, prompts, settings, trust_remote_code):
        asked.extend(prompts)
        return [f"  answer to {p}  " if p != "silent" else " " for p in prompts]

    monkeypatch.setattr(mixmerge.generation, "backend", lambda name: generate)
    config = LocalWriterConfig(kind="local", model="base-model", cache_dir=str(tmp_path))
    items = [("harmful", "en", "How?"), ("refusal", "fr", "Comment ?"), ("harmful", "en", "silent")]
    writer = make_writer(config, "syntheses.s.harmful")
    assert writer.write(items) == ["answer to How?", "answer to Comment ?", None]
    assert asked == ["How?", "Comment ?", "silent"]
    again = make_writer(config, "syntheses.s.harmful")
    assert again.write(items)[:2] == ["answer to How?", "answer to Comment ?"]
    # Only the empty answer, which was not kept, is asked for again.
    assert asked[3:] == ["silent"] and again.usage() == {"generated": 1, "cached": 2}


def test_a_local_writer_runs_the_generation_backend_once_per_call(
    tiny_study, tmp_path, monkeypatch
):
    import mixmerge.generation.hf as hf
    from mixmerge.config.syntheses import LocalWriterConfig
    from mixmerge.synthesis.writers import make_writer

    calls = []
    original = hf.generate

    def counted(model_dir, prompts, settings, trust_remote_code=False):
        calls.append(len(prompts))
        return original(model_dir, prompts, settings, trust_remote_code)

    monkeypatch.setattr(hf, "generate", counted)
    config = LocalWriterConfig(
        kind="local", model=str(tiny_study / "models/base/seed-0"), cache_dir=str(tmp_path),
        generation={"max_new_tokens": 8, "batch_size": 2},
    )  # fmt: skip
    items = [("harmful", "en", f"How do I do thing {i}?") for i in range(5)]
    answers = make_writer(config, "syntheses.s.harmful").write(items)
    # Five prompts in batches of two: one backend call, which loads the model once.
    assert calls == [5] and len(answers) == 5
    assert all(isinstance(a, str) and a for a in answers)
    again = make_writer(config, "syntheses.s.harmful")
    assert again.write(items) == answers and calls == [5]
