"""Judges by `evaluation.judge.kind`: each gives harm, refusal and quality verdicts on responses.

`rule` knows the embedded world's answers; `llm` asks any OpenAI-compatible endpoint. A local
harm classifier (`classifier`) may take over the harm verdicts of either. To add a judge: write
a class with `harmful`, `refused`, `compare` and `usage` (see `rule.RuleJudge`) and register
its factory here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mixmerge.config.evaluation import JudgeConfig


def _rule(config: Any, section: str):
    from mixmerge.judging.rule import RuleJudge

    return RuleJudge()


def _llm(config: Any, section: str):
    from mixmerge.judging.llm import LLMJudge

    judge = LLMJudge(config, section)
    judge.check_reachable()  # an unreachable judge fails here, before any generation
    return judge


JUDGES: dict[str, Callable[[Any, str], Any]] = {"rule": _rule, "llm": _llm}


def make_judge(config: JudgeConfig, section: str = "evaluation.judge"):
    """The judge `config` describes; `section` is its params key, for messages."""
    return JUDGES[config.kind](config, section)
