from __future__ import annotations

import pytest

from mixmerge.core.errors import StageError
from mixmerge.core.io import atomic_path, read_jsonl


def test_a_file_appears_only_when_complete(tmp_path):
    target = tmp_path / "out.json"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"


def test_a_folder_replaces_the_previous_one_whole(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.bin").write_text("old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "weights.bin").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["weights.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_failure_keeps_the_previous_output_and_removes_the_partial_one(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights.bin").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "half.bin").write_text("partial")
        raise RuntimeError("killed")
    assert (target / "weights.bin").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_leftovers_of_a_killed_run_are_swept(tmp_path):
    leftover = tmp_path / ".model.tmp-99999"
    leftover.mkdir()
    with atomic_path(tmp_path / "model") as tmp:
        tmp.mkdir()
    assert not leftover.exists()


@pytest.mark.parametrize(
    "tail, says",
    [
        (b'{"prompt": "cut sho', "Unterminated string"),  # a writer killed mid-line
        ('{"prompt": "é"}'.encode()[:-3], "can't decode"),  # cut inside a character
        (b'{"prompt": "\xe9"}', "codec can't decode"),  # not UTF-8
        (b"[1, 2]", "a JSON list, not an object"),
    ],
)
def test_a_bad_json_line_is_named_by_file_and_line(tmp_path, tail, says):
    path = tmp_path / "sft.jsonl"
    path.write_bytes(b'{"prompt": "a"}\n\n{"prompt": "b\\u2028c"}\n' + tail)
    with pytest.raises(StageError, match=rf"sft\.jsonl line 4: .*{says}"):
        read_jsonl(path)
    path.write_bytes(b'{"prompt": "a"}\n\n{"prompt": "b\\u2028c \xe2\x80\xa8 \xf0\x9f\x99\x82"}\n')
    assert [row["prompt"] for row in read_jsonl(path)] == ["a", "b\u2028c \u2028 \U0001f642"]


def test_the_answer_cache_reads_back_every_answer_whatever_it_holds(tmp_path):
    from mixmerge.api.cache import AnswerCache

    path = tmp_path / "judge.jsonl"
    answers = {"a": "line\u2028separator", "b": "next\u0085line", "c": "emoji \U0001f642", "d": "é"}
    cache = AnswerCache(path)
    for key, answer in answers.items():
        cache.put(key, answer, {"total_tokens": 1})
    # A kill mid-write: the last line is cut inside a character.
    path.write_bytes(path.read_bytes()[:-3])
    read = AnswerCache(path)
    assert {k: read.get(k)["answer"] for k in "abc"} == {k: answers[k] for k in "abc"}
    assert read.get("d") is None
    read.put("e", "after the cut", {})
    assert AnswerCache(path).get("e")["answer"] == "after the cut"
