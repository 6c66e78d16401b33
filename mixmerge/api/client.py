"""A client for any OpenAI-compatible chat endpoint (OpenAI, vLLM, TGI, LiteLLM...).

Requests go out concurrently up to a limit. The openai client retries them, a bounded number
of times, on connection errors, timeouts, 408, 409, 429 and 5xx, waiting what the server's
Retry-After (or retry-after-ms) says or backing off exponentially with jitter; this module
counts the tries. Answers the caller accepts are cached on disk, so that a rerun sends nothing
and a killed run resumes. A request that fails every try, or is refused for its item (a content
filter, a prompt too long), has no answer: counted, and None to the caller. Refusals that no
item can get past (a bad key, an unknown model) stop the stage. The API key is read from the
environment variable the params name, and goes nowhere else.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from mixmerge.api.cache import AnswerCache, cache_file, cache_key
from mixmerge.core.errors import StageError

Accept = Callable[[str], bool]

# The statuses the openai client retries: once its tries are spent, these mean the request
# failed, where any other refusal is about the item.
TRANSIENT_STATUSES = frozenset({408, 409, 429})
COUNTS = (
    "requests",
    "retries",
    "failed",
    "refused",
    "truncated",
    "cached",
    "prompt_tokens",
    "completion_tokens",
)


class ChatAPI:
    """`config`: an `EndpointConfig`. `role` names the endpoint in messages ("the LLM judge")
    and `section` its params key (`evaluation.judge`)."""

    def __init__(self, config, role: str, section: str):
        import openai

        self.config = config
        self.role = role
        self.section = section
        self._openai = openai
        key = "EMPTY"  # what keyless local servers such as vLLM accept
        if config.api_key_env is not None:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise StageError(
                    f"{role} reads its API key from ${config.api_key_env}, which is not set"
                )
        # The client retries inside one call and tells only how the last try went, so the
        # tries are counted as they leave: an httpx request hook runs once per try, before it
        # connects (tries that time out or find no server count too), in the thread that makes
        # the call; that thread's tally goes into the shared counts under the lock when the
        # call ends, which keeps them exact under concurrency. The hook and `http_client` are
        # public API alike in httpx and in openai 1.40 to 2.x, where the retry loop's private
        # methods and headers are not. DefaultHttpxClient keeps the client's own connection
        # limits and redirects.
        # httpx logs every request at INFO: thousands of lines in a stage's output.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._tries = threading.local()
        self.client = openai.OpenAI(
            base_url=config.base_url,
            api_key=key,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
            http_client=openai.DefaultHttpxClient(event_hooks={"request": [self._tried]}),
        )
        self.cache = AnswerCache(cache_file(config.cache_dir, config.model))
        self._counts = dict.fromkeys(COUNTS, 0)
        self._lock = threading.Lock()

    def _fatal(self, error) -> StageError:
        where = f"the key in ${self.config.api_key_env}" if self.config.api_key_env else "the key"
        return StageError(
            f"{self.role} at {self.config.base_url} refused: HTTP {error.status_code} "
            f"(check `{self.section}.model` and {where})"
        )

    def check_reachable(self) -> None:
        """Fail now, before any work, when nothing answers at the endpoint or it refuses the
        key."""
        try:
            # One try: an endpoint that does not answer fails the stage now, not after backoffs.
            self.client.with_options(max_retries=0).models.list()
        except (self._openai.APIConnectionError, self._openai.APITimeoutError) as error:
            raise StageError(
                f"{self.role}'s endpoint {self.config.base_url} does not answer ({error})"
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

    def ask(
        self, version: str, item_key: tuple, messages: list[dict], accept: Accept
    ) -> str | None:
        """The endpoint's answer to `messages`, from the cache when an answer from the same
        endpoint and model to the same prompt `version` and item was accepted before; None
        when it gave none, or one cut short at `max_tokens`. An answer `accept` refuses (a
        judge's answer with no verdict) is returned but not cached, so that it is asked again
        next run."""
        # The endpoint too: two servers may serve different models under one name.
        key = cache_key(
            self.config.base_url, self.config.model, version, self.config.max_tokens, item_key
        )
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
        usage = completion.usage
        tokens = {
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
        }
        self._count(**tokens)
        if not completion.choices:  # what some proxies' content filters send back
            self._count(refused=1)
            return None
        choice = completion.choices[0]
        if choice.finish_reason == "length":
            # Cut at `max_tokens`: no verdict to read, and no answer fit to train on.
            self._count(truncated=1)
            return None
        answer = choice.message.content or ""
        if accept(answer):
            self.cache.put(key, answer, tokens)
        return answer

    def ask_all(self, jobs: Sequence[Callable[[], str | None]]) -> list[str | None]:
        """Run `jobs` (calls of `ask`) concurrently, up to `max_concurrency`; answers in order."""
        with ThreadPoolExecutor(self.config.max_concurrency) as pool:
            return list(pool.map(lambda job: job(), jobs))

    def usage(self) -> dict:
        """Requests (every try), retries, failed, refused, truncated (cut at `max_tokens`),
        cached answers and tokens; with a price in the params, `cost_usd` (cached answers cost
        nothing)."""
        usage = dict(self._counts)
        price = self.config.price_per_million_tokens
        if price is not None:
            cost = (
                price.prompt * usage["prompt_tokens"]
                + price.completion * usage["completion_tokens"]
            )
            usage["cost_usd"] = round(cost / 1e6, 4)
        return usage
