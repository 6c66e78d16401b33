"""Translators by `translator.kind`, and the translation of a source's records.

`mt`: a translation model through transformers (NLLB-200, M2M100; `mt.MTTranslator`); `llm`: an
LLM behind any OpenAI-compatible endpoint (`llm.LLMTranslator`). Each translates a batch of
texts from one language into another and caches every item, so that a rerun or a killed run
translates only what is missing. To add one: write a class with `model`, `check_languages`,
`translate` and `usage`, and register its factory here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from mixmerge.api.cache import AnswerCache, cache_file, cache_key
from mixmerge.core.records import Record, record_id


class CachedTranslator:
    """A translation model behind a cache: texts go line by line, and every line's translation
    is kept on disk as it is made (one JSON line per item).

    Line by line, because MT models trained on sentences and short passages (NLLB-200) drop or
    garble what follows in a long answer; the line breaks, lists and indentation of the text
    are kept as they were. A line seen before, in any text, is not translated again. A single
    line longer than the model reads (NLLB: 1,024 tokens) is cut, as its tokenizer cuts it."""

    def __init__(self, inner, cache_dir: str, settings: tuple, chunk: int):
        self.inner = inner
        self.model = inner.model
        self.settings = settings
        self.chunk = chunk
        self.cache = AnswerCache(cache_file(cache_dir, inner.model))
        self.counts = Counter(lines_translated=0, lines_cached=0)

    def check_languages(self, languages: Sequence[str]) -> None:
        self.inner.check_languages(languages)

    def translate(self, texts: list[str], source: str, target: str) -> list[str | None]:
        """Each text translated, or None when a line of it came back empty."""
        lines = [line.strip() for text in texts for line in text.splitlines()]
        done = self._lines(list(dict.fromkeys(filter(None, lines))), source, target)
        return [self._assemble(text, done) for text in texts]

    @staticmethod
    def _assemble(text: str, done: dict[str, str]) -> str | None:
        out = []
        for line in text.splitlines():
            content = line.strip()
            if content and content not in done:
                return None
            indent = line[: len(line) - len(line.lstrip())]  # a list's or code's indentation
            out.append(indent + done[content] if content else "")
        return "\n".join(out).strip() or None

    def _lines(self, lines: list[str], source: str, target: str) -> dict[str, str]:
        keys = [cache_key(self.model, self.settings, source, target, line) for line in lines]
        translated, cached = self.cache.fill(
            keys,
            lambda part: self.inner.translate([lines[i] for i in part], source, target),
            self.chunk,
        )
        self.counts["lines_cached"] += cached
        self.counts["lines_translated"] += len(lines) - cached
        return {line: text for line, text in zip(lines, translated, strict=True) if text}

    def usage(self) -> dict:
        return dict(self.counts)


def _mt(config: Any, section: str):
    from mixmerge.translation.mt import MTTranslator

    settings = (config.max_new_tokens, config.num_beams)
    # Chunks of a few batches: a kill loses at most one chunk of work.
    return CachedTranslator(MTTranslator(config), config.cache_dir, settings, 4 * config.batch_size)


def _llm(config: Any, section: str):
    from mixmerge.translation.llm import LLMTranslator

    return LLMTranslator(config, section)


TRANSLATORS: dict[str, Callable[[Any, str], Any]] = {"mt": _mt, "llm": _llm}


def make_translator(config, section: str):
    """The translator `config` describes; `section` is its params key, for messages."""
    return TRANSLATORS[config.kind](config, section)


def translate_records(
    name: str,
    records: Sequence[Record],
    fields: Sequence[str],
    languages: Sequence[str],
    translator,
    backend: str,
) -> tuple[list[dict], dict]:
    """Every record in every target language (its own language excepted), as rows of a
    generated source: the translated `fields` (the others empty), the source record's id, and
    the translator that made them. A record whose translation comes back empty in some field is
    dropped in that language, and counted."""
    rows: list[dict] = []
    dropped: Counter = Counter()
    kept: Counter = Counter()
    by_language: dict[str, list[Record]] = {}
    for record in records:
        by_language.setdefault(record.language, []).append(record)
    for source, group in by_language.items():
        for target in (code for code in languages if code != source):
            texts = {
                field: translator.translate(
                    [getattr(r, field) for r in group if getattr(r, field)], source, target
                )
                for field in fields
            }
            positions = {field: iter(values) for field, values in texts.items()}
            for record in group:
                values = {
                    field: next(positions[field]) if getattr(record, field) else None
                    for field in fields
                }
                if any(getattr(record, f) and not values[f] for f in fields):
                    dropped[target, "empty translation"] += 1
                    continue
                if not values.get("prompt"):
                    dropped[target, "no prompt to translate"] += 1
                    continue
                kept[target] += 1
                rows.append(
                    {
                        "id": record_id(name, target, record.category, values["prompt"]),
                        "source_id": record.id,
                        "language": target,
                        "category": record.category,
                        **{f: values.get(f) for f in ("prompt", "response", "chosen", "rejected")},
                        "translated_from": source,
                        "backend": backend,
                        "model": str(translator.model),
                    }
                )
    report = {
        "kept": {code: kept[code] for code in languages if kept[code]},
        "dropped": _per_language(dropped),
    }
    return rows, report


def _per_language(counts: Counter) -> dict:
    out: dict[str, dict[str, int]] = {}
    for (language, reason), n in sorted(counts.items()):
        out.setdefault(language, {})[reason] = n
    return out
