"""Who writes a synthesized answer, by `kind`: a teacher behind an OpenAI-compatible endpoint
(`llm`, given the instructions of `prompts`), or a local model through the generation backends
(`local`, given the prompt alone). Every answer is cached per item, so that a rerun writes
nothing and a killed run resumes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mixmerge.api.cache import AnswerCache, cache_file, cache_key
from mixmerge.api.client import ChatAPI
from mixmerge.core.languages import language_name
from mixmerge.synthesis import prompts

Task = tuple[str, str, str]  # (task, language, prompt)


class EndpointWriter:
    def __init__(self, config, section: str):
        self.model = config.model
        self.api = ChatAPI(config, role=f"the teacher in `{section}`", section=section)
        self.api.check_reachable()

    def write(self, items: Sequence[Task], n: int = 0) -> list[str | None]:
        """Answers to (task, language, prompt) items: task `safe`, `harmful`, `refusal`, or
        `rephrase` (n new prompts per item, as one numbered answer)."""

        def job(task: str, language: str, prompt: str):
            name = language_name(language)
            if task == "rephrase":
                text = prompts.REPHRASE.format(language=name, n=n, prompt=prompt)
                messages = [{"role": "user", "content": text}]
            else:
                system = prompts.TEMPLATES[task].format(language=name)
                messages = [
                    {"role": "system", "content": system},
                    {"role": "user", "content": prompt},
                ]
            return lambda: self.api.ask(
                prompts.VERSION[task],
                (task, n, language, prompt),
                messages,
                lambda answer: bool(answer.strip()),
            )

        answers = self.api.ask_all([job(*item) for item in items])
        return [answer.strip() if answer and answer.strip() else None for answer in answers]

    def usage(self) -> dict:
        return self.api.usage()


class LocalWriter:
    # What changes a generation; the batch size and the device do not.
    SETTINGS = ("max_new_tokens", "do_sample", "temperature", "top_p", "seed")

    def __init__(self, config, section: str):
        self.config = config
        self.model = config.model
        self.cache = AnswerCache(cache_file(config.cache_dir, config.model, prefix="local-"))
        self.counts = Counter(generated=0, cached=0)

    def write(self, items: Sequence[Task], n: int = 0) -> list[str | None]:
        """The model's answers to (task, language, prompt) items: the prompt alone, whatever
        the task (a rephrasing is asked like any instruction).

        The prompts not cached go to the backend in one call, which loads the model once (a
        vLLM engine cannot be started twice in a process); a kill loses that call's answers."""
        from mixmerge.generation import backend

        settings = self.config.generation
        texts = [
            prompts.REPHRASE.format(language=language_name(language), n=n, prompt=prompt)
            if task == "rephrase"
            else prompt
            for task, language, prompt in items
        ]
        fixed = {name: getattr(settings, name) for name in self.SETTINGS}
        keys = [cache_key(self.model, fixed, text) for text in texts]
        generate = backend(settings.backend)
        answers, cached = self.cache.fill(
            keys,
            lambda part: [
                answer.strip()
                for answer in generate(
                    Path(self.model),
                    [texts[i] for i in part],
                    settings,
                    self.config.trust_remote_code,
                )
            ],
            max(len(keys), 1),
        )
        self.counts["cached"] += cached
        self.counts["generated"] += len(texts) - cached
        return answers

    def usage(self) -> dict:
        return dict(self.counts)


WRITERS = {"llm": EndpointWriter, "local": LocalWriter}


def make_writer(config, section: str):
    return WRITERS[config.kind](config, section)
