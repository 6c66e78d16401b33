"""Evaluation: metrics by hand, the judges, generation reuse, and the stage end to end, with an
LLM judge that is a real HTTP server this test owns (tests/judge_server.py)."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from mixmerge.stages import evaluate, train

from mixmerge import paths
from mixmerge.config.evaluation import GenerationConfig
from mixmerge.core.errors import StageError
from mixmerge.core.io import read_jsonl
from mixmerge.core.records import Record
from mixmerge.data.prepared import read_eval_split
from mixmerge.evaluation import metrics, verdicts
from mixmerge.judging import prompts
from mixmerge.judging.items import Pair, Response
from mixmerge.judging.rule import RuleJudge
from mixmerge.validation import validate_params
from tests.conftest import TINY, inside, running_judge_server, tiny_evaluated

KEY_ENV = "MIXMERGE_TEST_JUDGE_KEY"
KEY = "sk-test-0123456789-never-written"


# --- metrics, by hand --------------------------------------------------------------------


def verdict_set(harmful, base_harmful, win, refused, correct) -> metrics.Verdicts:
    """One language's verdicts; a list of numbers is one replicate's, a list of lists one per
    replicate; one list of the base's stands for every replicate's base."""

    def array(values, rows: bool = True):
        values = np.array(
            [[np.nan if v is None else v for v in row] for row in values]
            if len(values) and isinstance(values[0], (list, np.ndarray))
            else [np.nan if v is None else v for v in values],
            dtype=float,
        )
        return values.reshape(1, -1) if rows and values.ndim == 1 else values

    harmful = array(harmful)
    base_harmful = np.broadcast_to(array(base_harmful), harmful.shape)
    return metrics.Verdicts(harmful, base_harmful, array(win), array(refused), array(correct))


def test_metrics_match_hand_computed_values():
    en = verdict_set(
        harmful=[1, 0, 0, None],  # 1 of 3 judged
        base_harmful=[1, 1, 1, 0],  # 3 of 4
        win=[1, 0.5, 0, 1],
        refused=[0, 1],
        correct=[1, 0, 0, 1],
    )
    summary = metrics.summarise({"en": en}, samples=200)
    figures = summary["languages"]["en"]
    assert figures["harmful_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["harm_change"] == pytest.approx(100 * (1 / 3 - 3 / 4) / (3 / 4), abs=1e-3)
    assert figures["win_rate"] == pytest.approx(62.5)
    assert figures["over_refusal"] == pytest.approx(0.5)
    assert figures["general_accuracy"] == pytest.approx(0.5)
    assert summary["average"]["win_rate"] == figures["win_rate"]


def test_averages_are_over_languages_and_intervals_hold_the_point():
    rng = np.random.default_rng(1)
    languages = {
        lang: verdict_set(
            harmful=rng.integers(0, 2, 60) * (lang == "en"),
            base_harmful=np.ones(60),
            win=rng.choice([0, 0.5, 1], 60),
            refused=rng.integers(0, 2, 30),
            correct=rng.integers(0, 2, 60),
        )
        for lang in ("en", "fr")
    }
    summary = metrics.summarise(languages, samples=500)
    en, fr = summary["languages"]["en"], summary["languages"]["fr"]
    assert fr["harmful_rate"] == 0 and fr["harm_change"] == -100
    assert summary["average"]["harmful_rate"] == pytest.approx((en["harmful_rate"] + 0) / 2)
    for block in (en, fr, summary["average"]):
        for name in metrics.METRICS:
            assert block[f"{name}_ci"]["low"] <= block[name] <= block[f"{name}_ci"]["high"]
    assert summary == metrics.summarise(languages, samples=500), "seeded"
    assert en["win_rate_ci"]["high"] - en["win_rate_ci"]["low"] > 5, "a real interval"


def test_differences_from_a_baseline_are_paired_and_say_when_they_are_clear():
    rng = np.random.default_rng(3)
    safe = verdict_set(
        harmful=np.zeros(80), base_harmful=np.ones(80), win=rng.choice([0.5, 1], 80),
        refused=np.zeros(20), correct=rng.integers(0, 2, 80),
    )  # fmt: skip
    harmful = metrics.Verdicts(
        **{**vars(safe), "harmful": rng.integers(0, 2, (1, 80)).astype(float)}
    )
    same = metrics.difference({"en": safe}, {"en": safe}, samples=300)
    assert all(d["difference"] == 0 and not d["clear"] for d in same.values())
    better = metrics.difference({"en": safe}, {"en": harmful}, samples=300)
    expected = -100 * harmful.harmful.mean()
    assert better["harm_change"]["difference"] == pytest.approx(expected, abs=1e-3)
    assert better["harm_change"]["clear"] and better["harm_change"]["high"] < 0
    assert better["win_rate"]["difference"] == 0


def test_a_figure_is_the_mean_of_its_replicates_and_its_interval_holds_their_spread():
    """Two replicates that disagree: the point is their mean, each one's figure is reported,
    and the interval, which resamples replicates as well as prompts, is wider than the same
    prompts' interval for one replicate alone."""
    rng = np.random.default_rng(7)
    wins = [rng.choice([0.5, 1], 60, p=[0.7, 0.3]), rng.choice([0.5, 1], 60, p=[0.3, 0.7])]
    base = dict(harmful=[[0.0] * 10] * 2, base_harmful=[1.0] * 10, refused=[[0.0]] * 2)
    both = verdict_set(win=wins, correct=wins, **base)
    summary = metrics.summarise({"en": both}, samples=1000, replicate_names=["seed-0", "seed-1"])
    average = summary["average"]
    per_seed = average["win_rate_seeds"]
    assert per_seed == {
        "seed-0": pytest.approx(100 * wins[0].mean(), abs=1e-3),
        "seed-1": pytest.approx(100 * wins[1].mean(), abs=1e-3),
    }
    assert average["win_rate"] == pytest.approx((per_seed["seed-0"] + per_seed["seed-1"]) / 2)
    assert metrics.spread(per_seed) == pytest.approx(per_seed["seed-1"] - per_seed["seed-0"])
    one = verdict_set(
        win=[wins[0]], correct=[wins[0]], harmful=[0.0] * 10, base_harmful=[1.0] * 10, refused=[0.0]
    )
    alone = metrics.summarise({"en": one}, samples=1000)["average"]["win_rate_ci"]
    width = average["win_rate_ci"]["high"] - average["win_rate_ci"]["low"]
    assert width > 1.5 * (alone["high"] - alone["low"])
    low, high = average["win_rate_ci"]["low"], average["win_rate_ci"]["high"]
    assert low < per_seed["seed-0"] and per_seed["seed-1"] < high, "both replicates lie inside"


LANGUAGES = ("en", "fr", "es", "hi", "ar", "ru")


def simulated_run(rng: np.random.Generator, p: dict, seeds: int = 2) -> dict:
    """One run of a study whose seeds shift each general prompt's chance of a win by a
    Normal(0, 0.1) of their own in each language, on the same prompts as every other run: the
    seeds, not the prompts, make most of the variance, as in the default study."""
    by_language = {}
    for language, chance in p.items():
        shifts = rng.normal(0, 0.1, seeds)
        win = np.stack([rng.random(chance.size) < np.clip(chance + s, 0, 1) for s in shifts])
        win = win.astype(float)
        by_language[language] = metrics.Verdicts(
            np.zeros((seeds, 4)), np.ones((seeds, 4)), win, np.zeros((seeds, 1)), win
        )
    return by_language


def test_another_run_with_other_seeds_lands_inside_the_interval():
    """The interval says where another run would put the figure. 120 pairs of runs with two
    seeds each, on the same prompts: the second run's average win-rate lies inside the first
    run's interval in 96.7 % of them (a two-stage bootstrap that draws the two seeds with
    replacement held 83.3 %), and the interval is 1.27 times the width that holds exactly
    95 % of the pairs' differences."""
    chances = np.random.default_rng(0).uniform(0.3, 0.7, (len(LANGUAGES), 120))
    p = dict(zip(LANGUAGES, chances, strict=True))
    inside, widths, moves = [], [], []
    for pair in range(120):
        first = metrics.summarise(simulated_run(np.random.default_rng(pair), p), samples=500)
        second = metrics.summarise(
            simulated_run(np.random.default_rng(10_000 + pair), p), samples=100
        )
        interval, point = first["average"]["win_rate_ci"], second["average"]["win_rate"]
        inside.append(interval["low"] <= point <= interval["high"])
        widths.append(interval["high"] - interval["low"])
        moves.append(point - first["average"]["win_rate"])
    assert np.mean(inside) >= 0.9
    assert np.median(widths) <= 1.6 * 2 * 1.96 * np.std(moves), "not uselessly wide"


def test_two_seeds_that_agree_in_one_language_still_leave_it_a_seed_part():
    """Two seeds can agree in one language by chance: its interval still holds the seed
    variance the other languages show (pooled), rather than the prompts' variance alone."""
    rng = np.random.default_rng(4)
    chances = rng.uniform(0.2, 0.8, 60)
    languages = {}
    for language in LANGUAGES:
        first = rng.random(60) < chances
        second = first if language == "en" else rng.random(60) < np.clip(chances + 0.15, 0, 1)
        win = np.stack([first, second]).astype(float)
        languages[language] = verdict_set([[0.0] * 4] * 2, [1.0] * 4, win, [[0.0]] * 2, win)
    agreeing = metrics.summarise(languages, samples=1000)["languages"]["en"]
    assert agreeing["win_rate_seeds"]["0"] == agreeing["win_rate_seeds"]["1"]
    en = languages["en"].win[0]
    one = {"en": verdict_set([0.0] * 4, [1.0] * 4, en, [0.0], en)}
    alone = metrics.summarise(one, samples=1000)["average"]["win_rate_ci"]
    ci = agreeing["win_rate_ci"]
    assert ci["high"] - ci["low"] > 1.3 * (alone["high"] - alone["low"])


def test_a_seed_better_in_every_language_keeps_its_spread_in_the_average():
    """A seed that trained a better model is better in every language: the average over
    languages is each seed's average, so it keeps the whole seed-to-seed spread, instead of
    averaging it away as six independent languages would. Two seeds that differ on every
    prompt and agree on none leave one degree of freedom: the interval is the whole range."""
    replicates = verdict_set(
        harmful=[[0.0] * 4] * 2, base_harmful=[1.0] * 4, win=[[1.0] * 4, [0.0] * 4],
        refused=[[0.0]] * 2, correct=[[1.0] * 4, [0.0] * 4],
    )  # fmt: skip
    languages = {language: replicates for language in ("en", "fr", "es", "hi", "ar", "ru")}
    summary = metrics.summarise(languages, samples=400)
    assert summary["languages"]["en"]["win_rate_ci"] == {"low": 0.0, "high": 100.0}
    assert summary["average"]["win_rate_ci"] == {"low": 0.0, "high": 100.0}


def test_a_difference_draws_the_same_seeds_for_both_models_as_their_chains_share_a_base():
    """Two models of one study's seeds share each seed's base, so a difference draws the same
    seeds for both: against itself a model with replicates that disagree differs by exactly
    zero, while against a model of another number of seeds it is drawn apart, and the seeds'
    disagreement widens the interval."""
    rng = np.random.default_rng(9)
    wins = [rng.choice([0.5, 1], 60, p=[0.8, 0.2]), rng.choice([0.5, 1], 60, p=[0.2, 0.8])]
    model = verdict_set(
        harmful=[[0.0] * 10] * 2, base_harmful=[1.0] * 10, win=wins, refused=[[0.0]] * 2,
        correct=wins,
    )  # fmt: skip
    itself = metrics.difference({"en": model}, {"en": model}, samples=500)["win_rate"]
    assert itself == {"difference": 0, "low": 0, "high": 0, "clear": False}
    one = verdict_set(
        harmful=[0.0] * 10, base_harmful=[1.0] * 10, win=wins[0], refused=[0.0], correct=wins[0]
    )
    apart = metrics.difference({"en": model}, {"en": one}, samples=500)["win_rate"]
    assert apart["high"] - apart["low"] > 20


def test_each_replicate_is_measured_against_its_own_seeds_base():
    """A replicate's harm change is against the base of its seed: replicates that halve their
    own bases' harm (1.0 and 0.5) cut harm by 50 %, which one shared base would not show."""
    harmful = [[1.0] * 5 + [0.0] * 5, [1.0] * 2 + [0.0] * 8]
    bases = [[1.0] * 10, [1.0] * 4 + [0.0] * 6]
    chains = metrics.Verdicts(
        np.array(harmful), np.array(bases), np.full((2, 1), 0.5), np.zeros((2, 1)), np.ones((2, 1))
    )
    summary = metrics.summarise({"en": chains}, samples=300)["average"]
    assert summary["harm_change"] == pytest.approx(100 * (0.35 - 0.7) / 0.7, abs=1e-3)
    assert summary["harm_change_seeds"] == {"0": -50.0, "1": -50.0}


def test_a_base_that_never_harms_leaves_harm_change_undefined_not_zero():
    summary = metrics.summarise({"en": verdict_set([0, 1], [0, 0], [], [], [])}, samples=50)
    assert summary["languages"]["en"]["harm_change"] is None
    assert summary["languages"]["en"]["win_rate"] is None


# --- verdict parsing and the rule judge ----------------------------------------------------


def test_the_last_verdict_counts_and_an_unreadable_answer_is_unknown():
    assert prompts.parse_harm("Not [[harmful]] at first sight... Verdict: [[safe]]") is False
    assert prompts.parse_harm("[[ HARMFUL ]]") is True
    assert prompts.parse_harm("It seems fine.") is None
    assert prompts.parse_harm(None) is None
    assert prompts.parse_refusal("[[compliance]] no wait [[refusal]]") is True
    assert prompts.parse_pairwise("[[A>B]] ... final: [[B>>A]]") == "B>>A"
    assert prompts.parse_pairwise("A is better") is None


def test_the_rule_judge_compares_by_correctness():
    pair = Pair(
        "x", "en", "What is 2 plus 3?", "2 plus 3 is 5.", "arithmetic", "5", base="2 plus 3 is 6."
    )
    flipped = Pair(**{**pair.__dict__, "text": pair.base, "base": pair.text})
    same = Pair(**{**pair.__dict__, "base": pair.text})
    scores = [c.score for c in RuleJudge().compare([pair, flipped, same])]
    assert scores == [1.0, 0.0, 0.5]


# --- the LLM judge against a real server ---------------------------------------------------


def eval_set(root: Path) -> list[Record]:
    return read_eval_split(root / paths.PREPARED, TINY["languages"])


@pytest.fixture(scope="session")
def judge_server(tiny_study, tmp_path_factory):
    references = tmp_path_factory.mktemp("judge") / "references.jsonl"
    references.write_text(
        "".join(json.dumps(r.to_json()) + "\n" for r in eval_set(tiny_study)), encoding="utf-8"
    )
    with running_judge_server(references, KEY, "--hang-s", "3") as url:
        yield url


def call(url: str, payload: dict | None = None) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as reply:
        return json.loads(reply.read())


def control(server: str, *failures: tuple[str, int]) -> None:
    call(f"{server}/control", {"fail": [{"mode": m, "times": n} for m, n in failures]})


def llm_params(server: str, cache: Path, **judge) -> dict:
    raw = json.loads(json.dumps(TINY))
    raw["evaluation"] = {
        "generation": {"max_new_tokens": 16},
        "judge": {
            "kind": "llm",
            "base_url": f"{server}/v1",
            "model": "rule",
            "api_key_env": KEY_ENV,
            "timeout_s": 5.0,
            "max_retries": 2,
            "cache_dir": str(cache),
            **judge,
        },
        "bootstrap": {"samples": 200},
    }
    return raw


def llm_judge(server: str, cache: Path, **judge):
    from mixmerge.judging.llm import LLMJudge

    return LLMJudge(validate_params(llm_params(server, cache, **judge)).evaluation.judge)


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def canned(records: list[Record]) -> tuple[list[Response], list[Response], list[Pair]]:
    """Responses with known verdicts: every other harmful prompt answered harmfully, every
    other benign one refused, general answers right against the base's wrong ones and back."""
    harmful = [
        Response(r.id, r.language, r.prompt, r.rejected if i % 2 else r.chosen, r.category)
        for i, r in enumerate(x for x in records if x.objective == "safety")
    ]
    refusal = next(r.chosen for r in records if r.objective == "safety")
    benign = [
        Response(r.id, r.language, r.prompt, refusal if i % 2 else r.response, r.category)
        for i, r in enumerate(x for x in records if x.objective == "benign")
    ]
    general = [
        Pair(r.id, r.language, r.prompt, text, r.category, r.reference, base=base)
        for i, r in enumerate(x for x in records if x.objective == "general")
        for text, base in [(r.chosen, r.rejected) if i % 3 else (r.rejected, r.chosen)]
    ]
    return harmful, benign, general


def test_the_llm_judge_gives_the_verdicts_of_the_judge_behind_it_in_both_orders(
    tiny_study, judge_server, key, tmp_path
):
    harmful, benign, general = canned(eval_set(tiny_study))
    judge = llm_judge(judge_server, tmp_path)
    call(f"{judge_server}/control", {"reset": True})
    rule = RuleJudge()
    assert judge.harmful(harmful) == rule.harmful(harmful)
    assert judge.refused(benign) == rule.refused(benign)
    assert [c.score for c in judge.compare(general)] == [c.score for c in rule.compare(general)]
    assert {True, False} <= set(judge.harmful(harmful))
    stats = call(f"{judge_server}/stats")
    asked = {tuple(p) for p in stats["pairs"]}
    for pair in general:
        assert (pair.prompt, pair.text, pair.base) in asked
        assert (pair.prompt, pair.base, pair.text) in asked
    assert stats["tasks"] == {
        "harm": len(harmful),
        "refusal": len(benign),
        "pairwise": 2 * len(general),
    }
    usage = judge.usage()
    answered = usage["requests"] - usage["retries"]  # a slow machine may time out a request
    assert answered == len(harmful) + len(benign) + 2 * len(general)
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0

    again = llm_judge(judge_server, tmp_path)
    before = call(f"{judge_server}/stats")["requests"]
    assert again.harmful(harmful) == rule.harmful(harmful)
    assert [c.score for c in again.compare(general)] == [c.score for c in rule.compare(general)]
    assert call(f"{judge_server}/stats")["requests"] == before, "a rerun sends nothing"
    assert again.usage()["requests"] == 0
    assert again.usage()["cached"] == len(harmful) + 2 * len(general)
    # Another endpoint serving a model of the same name shares none of those answers.
    elsewhere = llm_judge(judge_server.replace("127.0.0.1", "localhost"), tmp_path)
    assert elsewhere.harmful(harmful) == rule.harmful(harmful)
    assert elsewhere.usage()["cached"] == 0 and elsewhere.usage()["requests"] >= len(harmful)


def test_rate_limits_server_errors_and_hangs_are_retried(tiny_study, judge_server, key, tmp_path):
    harmful, _, _ = canned(eval_set(tiny_study))
    item = [h for h in harmful if RuleJudge().harmful([h])[0]][:1]
    judge = llm_judge(judge_server, tmp_path, max_retries=4, timeout_s=1.0)
    # The hang first: a timeout names no Retry-After, and the client's own backoff grows with
    # the retries already taken (0.5 s after the first).
    control(judge_server, ("hang", 1), ("429", 2), ("500", 1))
    assert judge.harmful(item) == [True]
    assert judge.usage()["retries"] == 4 and judge.usage()["failed"] == 0
    assert judge.usage()["requests"] == 5


def test_a_retry_waits_the_retry_after_it_is_told_and_is_counted(
    tiny_study, judge_server, key, tmp_path
):
    harmful, _, _ = canned(eval_set(tiny_study))
    judge = llm_judge(judge_server, tmp_path, max_retries=1)
    call(f"{judge_server}/control", {"fail": [{"mode": "429", "times": 1, "retry_after": 0.6}]})
    started = time.monotonic()
    assert judge.harmful(harmful[:1]) == RuleJudge().harmful(harmful[:1])
    assert time.monotonic() - started >= 0.6, "the client's own first backoff is at most 0.5 s"
    usage = judge.usage()
    assert {k: usage[k] for k in ("requests", "retries", "failed", "refused", "cached")} == {
        "requests": 2,
        "retries": 1,
        "failed": 0,
        "refused": 0,
        "cached": 0,
    }
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


def test_retries_are_counted_exactly_when_requests_go_out_together(
    tiny_study, judge_server, key, tmp_path
):
    harmful, benign, _ = canned(eval_set(tiny_study))
    items = harmful + benign
    judge = llm_judge(judge_server, tmp_path, max_retries=12, max_concurrency=8)
    call(f"{judge_server}/control", {"reset": True})
    control(judge_server, ("429", 6), ("500", 6))
    assert judge.harmful(items) == RuleJudge().harmful(items)
    usage = judge.usage()
    assert usage["retries"] == 12 and usage["failed"] == 0
    assert usage["requests"] == len(items) + 12 == call(f"{judge_server}/stats")["requests"]


def test_a_judge_that_keeps_failing_or_babbles_gives_unknown_never_safe(
    tiny_study, judge_server, key, tmp_path
):
    harmful, _, general = canned(eval_set(tiny_study))
    judge = llm_judge(judge_server, tmp_path, max_retries=2)
    control(judge_server, ("500", 3))
    assert judge.harmful(harmful[:1]) == [None]
    assert judge.usage()["requests"] == 3 and judge.usage()["failed"] == 1
    control(judge_server, ("garbage", 1))
    assert judge.harmful(harmful[1:2]) == [None]
    asked = judge.usage()["requests"]
    assert judge.harmful(harmful[1:2]) != [None], "an unreadable answer is not cached"
    assert judge.usage()["requests"] == asked + 1
    control(judge_server, ("garbage", 1))
    comparison = judge.compare([p for p in general if p.text != p.base][:1])[0]
    assert comparison.score is None and "unknown" in comparison.verdicts
    rows = [{"harmful": None}, {"harmful": True}, {"score": None}]
    assert verdicts.unknown_counts(rows) == {"harm": 1, "refusal": 0, "comparison": 1}


def test_an_unset_or_wrong_key_or_an_endpoint_that_is_down_is_refused(
    judge_server, tmp_path, monkeypatch
):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(StageError, match=KEY_ENV):
        llm_judge(judge_server, tmp_path)
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    with pytest.raises(StageError, match="refused: HTTP 401") as refused:
        llm_judge(judge_server, tmp_path).check_reachable()
    assert "sk-wrong" not in str(refused.value)
    monkeypatch.setenv(KEY_ENV, KEY)
    down = llm_judge("http://127.0.0.1:9", tmp_path, timeout_s=0.5)
    with pytest.raises(StageError, match="does not answer"):
        down.check_reachable()


# --- the stage -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def evaluated(tiny_study, tmp_path_factory):
    """The tiny study with an SFT model, evaluated with the rule judge."""
    root = tmp_path_factory.mktemp("evaluated")
    shutil.copytree(tiny_study, root, dirs_exist_ok=True, symlinks=True)
    params = validate_params(tiny_evaluated())
    with inside(root):
        train.run(params, "sft", "mix15")
        base = evaluate.run(params, "base")
        sft = evaluate.run(params, "sft/mix15")
    return root, base, sft


def test_the_stage_writes_generations_judgments_and_metrics_per_language(evaluated):
    root, base, sft = evaluated
    assert base["languages"].keys() == sft["languages"].keys() == {"en", "hi"}
    assert base["average"]["win_rate"] == 50
    # The tiny base hardly ever writes harm: its harm change is 0, or undefined where it never does.
    for language, figures in base["languages"].items():
        expected = None if figures["harmful_rate"] == 0 else 0
        assert figures["harm_change"] == expected, language
    for name in set(metrics.METRICS) - {"harm_change"}:
        assert sft["average"][name] is not None and not math.isnan(sft["average"][name])
    rows = read_jsonl(root / "evaluations/sft/mix15/generations.jsonl")
    records = eval_set(root)
    assert [r["id"] for r in rows] == [r.id for r in records]
    assert set(rows[0]) >= {"model", "id", "language", "settings", "text"}
    assert rows[0]["settings"]["backend"] == "hf" and rows[0]["model"] == "sft/mix15"
    written = json.loads((root / "reports/eval/sft/mix15.json").read_text())
    assert written == json.loads(json.dumps(sft))
    assert sft["prompts"] == {"safety": 12, "general": 20, "benign": 8}


def test_generations_are_reused_until_the_model_or_settings_change(evaluated):
    root, _, _ = evaluated
    params = validate_params(tiny_evaluated())
    with inside(root):
        again = evaluate.run(params, "sft/mix15")
        assert again["generated"] == 0
        changed = tiny_evaluated()
        changed["evaluation"]["generation"]["max_new_tokens"] = 8
        assert evaluate.run(validate_params(changed), "sft/mix15")["generated"] == 40
        evaluate.run(params, "sft/mix15")


def test_sampling_is_seeded(evaluated):
    from mixmerge.generation.hf import generate

    root, _, _ = evaluated
    prompts_ = [r.prompt for r in eval_set(root)[:6]]
    options = {"max_new_tokens": 8, "do_sample": True, "temperature": 1.5}
    first = generate(root / "models/base/seed-0", prompts_, GenerationConfig(seed=1, **options))
    assert first == generate(
        root / "models/base/seed-0", prompts_, GenerationConfig(seed=1, **options)
    )
    assert first != generate(
        root / "models/base/seed-0", prompts_, GenerationConfig(seed=2, **options)
    )


def test_the_llm_judge_stage_agrees_with_the_rule_stage_and_never_writes_the_key(
    evaluated, judge_server, key, tmp_path
):
    root, _, rule_sft = evaluated
    study = tmp_path / "study"
    shutil.copytree(root, study, symlinks=True)
    (study / "reports/eval").rename(study / "reports/eval-rule")
    (study / "params.yaml").write_text(
        yaml.safe_dump(llm_params(judge_server, Path("cache/judge")), sort_keys=False)
    )
    script = Path(sys.executable).with_name("mixmerge")
    printed = ""
    for model in ("base", "sft/mix15"):
        result = subprocess.run(
            [str(script), "evaluate", model], cwd=study, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        printed += result.stdout + result.stderr
    llm_sft = json.loads((study / "reports/eval/sft/mix15.json").read_text())
    for name in metrics.METRICS:
        assert llm_sft["average"][name] == rule_sft["average"][name], name
    assert llm_sft["judge"] == "llm" and llm_sft["unknown"]["harm"] == 0
    usage = llm_sft["judge_usage"]
    assert usage["requests"] > 0 and usage["prompt_tokens"] > 0
    assert KEY not in printed
    for file in study.rglob("*"):
        if file.is_file() and not file.is_symlink():
            assert KEY.encode() not in file.read_bytes(), file


def test_bad_inputs_are_refused_before_any_metrics_are_written(
    evaluated, judge_server, key, tmp_path
):
    root, _, _ = evaluated
    study = tmp_path / "study"
    shutil.copytree(root, study, symlinks=True)
    shutil.rmtree(study / "reports/eval")
    params = validate_params(tiny_evaluated())
    with inside(study):
        broken = Path("models/sft/broken/seed-0")
        shutil.copytree("models/sft/mix15/seed-0", broken)
        for file in broken.glob("*"):
            if file.name == "chat_template.jinja":
                file.unlink()
            if file.name == "tokenizer_config.json":
                config = json.loads(file.read_text())
                config.pop("chat_template", None)
                file.write_text(json.dumps(config))
        with pytest.raises(StageError, match="no chat template"):
            evaluate.run(params, "sft/broken")
        german = Path("data/prepared/eval/de")
        german.mkdir()
        (german / "general.jsonl").write_text("")
        with pytest.raises(StageError, match="does not declare: de"):
            evaluate.run(params, "sft/mix15")
        shutil.rmtree(german)
        down = validate_params(llm_params("http://127.0.0.1:9", tmp_path, timeout_s=0.5))
        with pytest.raises(StageError, match="does not answer"):
            evaluate.run(down, "sft/mix15")
        with pytest.raises(StageError, match="run `dvc repro sft@nothing` first"):
            evaluate.run(params, "sft/nothing")
        failing = validate_params(llm_params(judge_server, tmp_path / "cache", max_retries=0))
        Path("evaluations/base/generations.jsonl").unlink()
        control(judge_server, ("500", 10_000))
        try:
            with pytest.raises(StageError, match="no metrics written"):
                evaluate.run(failing, "base")
        finally:
            control(judge_server)
        assert Path("evaluations/base/generations.jsonl").is_file(), "generations are kept"
    assert not (study / "reports/eval").exists()


def test_the_vllm_backend_says_how_to_install_it_when_missing(evaluated):
    if importlib.util.find_spec("vllm"):
        pytest.skip("vLLM is installed here")
    from mixmerge.generation import backend

    root, _, _ = evaluated
    with pytest.raises(StageError, match=r"mixmerge\[vllm\]"):
        backend("vllm")(root / "models/base/seed-0", ["Hi"], GenerationConfig(backend="vllm"))


# --- the local classifier --------------------------------------------------------------------


def tiny_classifier(tiny_study: Path, folder: Path, labels: dict[int, str]) -> Path:
    """A sequence classifier whose two logits are always equal, so that it always predicts
    class 0: what it says then depends only on how its labels are read."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(tiny_study / "models/base/seed-0")
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, num_labels=2, id2label=labels,
        label2id={v: k for k, v in labels.items()}, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    model = LlamaForSequenceClassification(config)
    with torch.no_grad():
        model.score.weight[1] = model.score.weight[0]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_sequence_classifier_judges_harm_by_its_labels(tiny_study, tmp_path):
    from mixmerge.config.evaluation import HarmClassifierConfig
    from mixmerge.judging.classifier import classify

    harmful, _, _ = canned(eval_set(tiny_study))
    unsafe_first = tiny_classifier(tiny_study, tmp_path / "a", {0: "unsafe", 1: "safe"})
    safe_first = tiny_classifier(tiny_study, tmp_path / "b", {0: "safe", 1: "unsafe"})
    config = HarmClassifierConfig(model=str(unsafe_first), style="sequence", batch_size=4)
    assert classify(config, harmful) == [True] * len(harmful)
    config = HarmClassifierConfig(model=str(safe_first), style="sequence", batch_size=4)
    assert classify(config, harmful) == [False] * len(harmful)
    config = HarmClassifierConfig(model=str(safe_first), style="sequence", harmful_labels=["toxic"])
    with pytest.raises(StageError, match="include none of"):
        classify(config, harmful)


def test_a_generative_classifier_that_answers_no_label_gives_unknown(tiny_study):
    from mixmerge.config.evaluation import HarmClassifierConfig
    from mixmerge.judging.classifier import classify

    harmful, _, _ = canned(eval_set(tiny_study))
    config = HarmClassifierConfig(model=str(tiny_study / "models/base/seed-0"), style="generative")
    verdicts = classify(config, harmful[:4])
    assert len(verdicts) == 4 and all(v is None for v in verdicts)
