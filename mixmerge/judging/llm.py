"""An LLM judge behind any OpenAI-compatible endpoint (OpenAI, vLLM, TGI, LiteLLM...).

Requests go out concurrently up to a limit. The openai client retries them, a bounded number
of times, on connection errors, timeouts, 408, 409, 429 and 5xx, waiting what the server's
Retry-After (or retry-after-ms) says or backing off exponentially with jitter; this module
counts the tries. Answers that state a verdict are cached on disk. A verdict that cannot be
read, or a request that fails every try or is refused (a content filter, a prompt too long), is
unknown: counted, reported, never taken as safe. Refusals that no item can get past (a bad key,
an unknown model) stop the stage. The API key is read from the environment variable the params
name, and goes nowhere else.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mixmerge.core.errors import StageError
from mixmerge.judging import prompts
from mixmerge.judging.cache import AnswerCache, cache_key
from mixmerge.judging.items import Comparison, Pair, Response

Parse = Callable[[str | None], object]

# The statuses the openai client retries: once its tries are spent, these mean the request
# failed, where any other refusal is about the item.
TRANSIENT_STATUSES = frozenset({408, 409, 429})


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
        # The client retries inside one call and tells only how the last try went, so the
        # tries are counted as they leave: an httpx request hook runs once per try, before it
        # connects (tries that time out or find no server count too), in the thread that makes
        # the call; that thread's tally goes into the shared counts under the lock when the
        # call ends, which keeps them exact under concurrency. The hook and `http_client` are
        # public API alike in httpx and in openai 1.40 to 2.x, where the retry loop's private
        # methods and headers are not. DefaultHttpxClient keeps the client's own connection
        # limits and redirects.
        self._tries = threading.local()
        self.client = openai.OpenAI(
            base_url=config.base_url,
            api_key=key,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
            http_client=openai.DefaultHttpxClient(event_hooks={"request": [self._tried]}),
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
            # One try: an endpoint that does not answer fails the stage now, not after backoffs.
            self.client.with_options(max_retries=0).models.list()
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

    def _tried(self, request) -> None:
        self._tries.n = getattr(self._tries, "n", 0) + 1

    def _ask(self, task: str, item_key: tuple, messages: list[dict], parse: Parse) -> str | None:
        key = cache_key(self.config.model, prompts.VERSION[task], self.config.max_tokens, item_key)
        cached = self.cache.get(key)
        if cached is not None:
            self._count(cached=1)
            return cached["answer"]
        fatal = (
            self._openai.AuthenticationError,
            self._openai.PermissionDeniedError,
            self._openai.NotFoundError,
        )
        self._tries.n = 0
        try:
            completion = self.client.chat.completions.create(
                model=self.config.model,
                messages=messages,
                temperature=0.0,
                max_tokens=self.config.max_tokens,
            )
        except self._openai.APIConnectionError:  # timeouts too: APITimeoutError is one
            self._count(failed=1)
            return None
        except fatal as error:
            raise self._fatal(error) from None
        except self._openai.APIStatusError as error:
            if error.status_code in TRANSIENT_STATUSES or error.status_code >= 500:
                self._count(failed=1)
            else:
                self._count(refused=1)  # this item only: a content filter, a prompt too long
            return None
        finally:
            tries = self._tries.n
            self._count(requests=tries, retries=max(tries - 1, 0))
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
