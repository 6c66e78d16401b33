"""An LLM judge behind any OpenAI-compatible endpoint (OpenAI, vLLM, TGI, LiteLLM...).

Requests, retries, the answer cache and the API key are `mixmerge.api.client`'s. A verdict that
cannot be read, or a request that fails every try or is refused (a content filter, a prompt too
long), is unknown: counted, reported, never taken as safe. Only answers that state a verdict are
cached, so that an unreadable one is asked again next run.
"""

from __future__ import annotations

from collections.abc import Callable

from mixmerge.api.client import ChatAPI
from mixmerge.judging import prompts
from mixmerge.judging.items import Comparison, Pair, Response

Parse = Callable[[str | None], object]


class LLMJudge:
    def __init__(self, config, section: str = "evaluation.judge"):
        self.config = config
        self.api = ChatAPI(config, role="the LLM judge", section=section)

    def check_reachable(self) -> None:
        """Fail now, before any generation, when nothing answers at the endpoint or it
        refuses the key."""
        self.api.check_reachable()

    def _ask(self, task: str, item_key: tuple, messages: list[dict], parse: Parse) -> str | None:
        return self.api.ask(
            prompts.VERSION[task], item_key, messages, lambda answer: parse(answer) is not None
        )

    def _all(self, jobs: list[Callable[[], str | None]]) -> list[str | None]:
        return self.api.ask_all(jobs)

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
        return self.api.usage()
