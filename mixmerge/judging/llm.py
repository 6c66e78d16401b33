"""An LLM judge behind any OpenAI-compatible endpoint (OpenAI, vLLM, TGI, LiteLLM...).

Requests go out concurrently up to a limit, with bounded retries and exponential backoff (with
jitter, or the server's Retry-After) on rate limits, server errors and timeouts. Answers that
state a verdict are cached on disk. A verdict that cannot be read, or a request that fails
every try or is refused (a content filter, a prompt too long), is unknown: counted, reported,
never taken as safe. Refusals that no item can get past (a bad key, an unknown model) stop the
stage. The API key is read from the environment variable the params name, and goes nowhere
else.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mixmerge.core.errors import StageError
from mixmerge.judging import prompts
from mixmerge.judging.cache import AnswerCache, cache_key
from mixmerge.judging.items import Comparison, Pair, Response

Parse = Callable[[str | None], object]


class LLMJudge:
    def __init__(self, config):
        import openai

        self.config = config
        self._openai = openai
        key = "EMPTY"  # what keyless local servers such as vLLM accept
        if config.api_key_env is not None:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise StageError(
                    f"the LLM judge reads its API key from ${config.api_key_env}, which is not set"
                )
        self.client = openai.OpenAI(
            base_url=config.base_url, api_key=key, timeout=config.timeout_s, max_retries=0
        )
        slug = "".join(c if c.isalnum() or c in "-._" else "_" for c in config.model)
        self.cache = AnswerCache(Path(config.cache_dir) / f"{slug}.jsonl")
        self._counts = dict.fromkeys(
            (
                "requests",
                "retries",
                "failed",
                "refused",
                "cached",
                "prompt_tokens",
                "completion_tokens",
            ),
            0,
        )
        self._lock = threading.Lock()

    def _fatal(self, error) -> StageError:
        where = f"the key in ${self.config.api_key_env}" if self.config.api_key_env else "the key"
        return StageError(
            f"the LLM judge at {self.config.base_url} refused: HTTP {error.status_code} "
            f"(check `evaluation.judge.model` and {where})"
        )

    def check_reachable(self) -> None:
        """Fail now, before any generation, when nothing answers at the endpoint or it
        refuses the key."""
        try:
            self.client.models.list()
        except (self._openai.APIConnectionError, self._openai.APITimeoutError) as error:
            raise StageError(
                f"the LLM judge's endpoint {self.config.base_url} does not answer ({error})"
            ) from None
        except (self._openai.AuthenticationError, self._openai.PermissionDeniedError) as error:
            raise self._fatal(error) from None
        except self._openai.APIStatusError:
            pass  # it answers; some servers list no models

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                self._counts[name] += value

    def _wait(self, attempt: int, error) -> None:
        retry_after = getattr(getattr(error, "response", None), "headers", {}).get("retry-after")
        try:
            delay = float(retry_after)
        except (TypeError, ValueError):
            delay = self.config.backoff_s * 2**attempt * (0.5 + random.random())
        time.sleep(min(delay, self.config.max_backoff_s))

    def _ask(self, task: str, item_key: tuple, messages: list[dict], parse: Parse) -> str | None:
        key = cache_key(self.config.model, prompts.VERSION[task], self.config.max_tokens, item_key)
        cached = self.cache.get(key)
        if cached is not None:
            self._count(cached=1)
            return cached["answer"]
        retryable = (
            self._openai.RateLimitError,
            self._openai.InternalServerError,
            self._openai.APITimeoutError,
            self._openai.APIConnectionError,
        )
        fatal = (
            self._openai.AuthenticationError,
            self._openai.PermissionDeniedError,
            self._openai.NotFoundError,
        )
        for attempt in range(self.config.max_retries + 1):
            try:
                self._count(requests=1)
                completion = self.client.chat.completions.create(
                    model=self.config.model,
                    messages=messages,
                    temperature=0.0,
                    max_tokens=self.config.max_tokens,
                )
            except retryable as error:
                if attempt == self.config.max_retries:
                    self._count(failed=1)
                    return None
                self._count(retries=1)
                self._wait(attempt, error)
                continue
            except fatal as error:
                raise self._fatal(error) from None
            except self._openai.APIStatusError:
                self._count(refused=1)  # this item only: a content filter, a prompt too long
                return None
            answer = completion.choices[0].message.content or ""
            usage = completion.usage
            tokens = {
                "prompt_tokens": usage.prompt_tokens if usage else 0,
                "completion_tokens": usage.completion_tokens if usage else 0,
            }
            self._count(**tokens)
            if parse(answer) is not None:  # an unreadable answer is asked again next run
                self.cache.put(key, answer, tokens)
            return answer
        return None

    def _all(self, jobs: list[Callable[[], str | None]]) -> list[str | None]:
        with ThreadPoolExecutor(self.config.max_concurrency) as pool:
            return list(pool.map(lambda job: job(), jobs))

    def _binary(self, task: str, items: list[Response], messages, parse) -> list[bool | None]:
        answers = self._all(
            [
                lambda i=i: self._ask(
                    task,
                    (i.language, i.prompt, i.text),
                    messages(i.language, i.prompt, i.text),
                    parse,
                )
                for i in items
            ]
        )
        return [parse(answer) for answer in answers]

    def harmful(self, items: list[Response]) -> list[bool | None]:
        return self._binary("harm", items, prompts.harm_messages, prompts.parse_harm)

    def refused(self, items: list[Response]) -> list[bool | None]:
        return self._binary("refusal", items, prompts.refusal_messages, prompts.parse_refusal)

    def compare(self, pairs: list[Pair]) -> list[Comparison]:
        """Each pair in both orders; the model's score is the mean of the two (win 1, tie 0.5,
        loss 0 each; a slight and a significant win count alike), so that a verdict that flips
        with the order is a tie. Identical answers tie without asking."""
        asked = [p for p in pairs if p.text != p.base]
        jobs = []
        for p in asked:
            for a, b, order in ((p.text, p.base, "model_first"), (p.base, p.text, "base_first")):
                jobs.append(
                    lambda p=p, a=a, b=b, order=order: self._ask(
                        "pairwise",
                        (p.language, p.prompt, a, b, order),
                        prompts.pairwise_messages(p.language, p.prompt, a, b),
                        prompts.parse_pairwise,
                    )
                )
        labels = [prompts.parse_pairwise(answer) for answer in self._all(jobs)]
        by_pair = iter(zip(labels[0::2], labels[1::2], strict=True))
        out = []
        for p in pairs:
            if p.text == p.base:
                out.append(Comparison(0.5, ("identical",)))
                continue
            model_first, base_first = next(by_pair)
            if model_first is None or base_first is None:
                out.append(Comparison(None, (model_first or "unknown", base_first or "unknown")))
                continue
            score = (prompts.A_SCORE[model_first] + 1 - prompts.A_SCORE[base_first]) / 2
            out.append(Comparison(score, (model_first, base_first)))
        return out

    def usage(self) -> dict:
        return dict(self._counts)
