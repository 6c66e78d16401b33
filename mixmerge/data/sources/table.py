"""Tables as a data source: a hub dataset, a local dataset folder, or local jsonl / csv / parquet
files, read with `datasets.load_dataset` and mapped to records by `columns`.

A malformed row is skipped and counted with its reason; nothing is dropped silently. Each file is
loaded on its own, because real files of one source rarely agree on their columns.
"""

from __future__ import annotations

import csv
import glob
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from mixmerge.config.data import FileSourceConfig, HubSourceConfig
from mixmerge.core.errors import StageError
from mixmerge.core.languages import ISO_639_1
from mixmerge.core.records import Record, prompt_key, record_id
from mixmerge.core.suggest import did_you_mean
from mixmerge.data.sources.output import SourceOutput, kept_per_language

EXAMPLES_PER_REASON = 3
MALFORMED = "malformed JSON line"
FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
# pandas would otherwise turn a prompt "NA" into a missing value and drop blank records unseen.
CSV_DEFAULTS = {"keep_default_na": False, "skip_blank_lines": False}


@dataclass
class Tally:
    rows: int = 0
    skipped: Counter = field(default_factory=Counter)
    filtered: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples[reason]) < EXAMPLES_PER_REASON:
            self.examples[reason].append(where)


class Skip(Exception):
    """A malformed row; the message is the reason."""


class Row(NamedTuple):
    where: str  # file and row number, for the report
    values: dict
    language: str | None  # the language of its file group, if the source has groups
    stem: str | None  # its file's name without extension: the fallback category


def read(
    name: str, config: HubSourceConfig | FileSourceConfig, languages: Sequence[str]
) -> SourceOutput:
    wanted = requested_languages(config, languages)
    tally = Tally()
    by_language: dict[str, list[Record]] = {code: [] for code in wanted}
    seen: set[tuple[str, str]] = set()
    for row in _rows(name, config, wanted, tally):
        excluded = _excluded(config, row)
        if excluded:
            tally.filtered[excluded] += 1
            continue
        for language in _row_languages(config, row, wanted):
            try:
                record = to_record(name, config, row, language)
            except Skip as reason:
                # In a wide file, one row holds several languages: say which one failed.
                tally.skip(
                    f"{reason} ({language})" if config.columns.wide else str(reason), row.where
                )
                continue
            if record.language not in by_language:
                tally.filtered[f"language {record.language} not requested"] += 1
                continue
            key = (record.language, prompt_key(record.prompt))
            if key in seen:
                duplicate = "duplicate prompt"
                tally.skip(
                    f"{duplicate} ({language})" if config.columns.wide else duplicate, row.where
                )
                continue
            seen.add(key)
            by_language[record.language].append(record)

    malformed = tally.skipped[MALFORMED]
    if malformed > config.max_malformed_share * tally.rows:
        raise StageError(
            f"data.sources.{name}: {malformed} of {tally.rows} lines are not JSON objects, more "
            f"than `max_malformed_share` ({config.max_malformed_share}); first at "
            f"{', '.join(tally.examples[MALFORMED])}"
        )
    empty = [code for code, rows in by_language.items() if not rows]
    if empty:
        raise StageError(
            f"data.sources.{name}: no usable records for {', '.join(empty)} "
            f"({tally.rows} rows read, skipped: {dict(tally.skipped) or 'none'})"
        )
    splits: dict[str, list[Record]] = {"train": [], "eval": [], "dev": []}
    for language, rows in by_language.items():
        rng = random.Random(f"{config.seed}:{language}")
        if config.max_per_language and len(rows) > config.max_per_language:
            tally.filtered["over max_per_language"] += len(rows) - config.max_per_language
            keep = sorted(rng.sample(range(len(rows)), config.max_per_language))
            rows = [rows[i] for i in keep]
        parts = _split(rows, config.use, config.eval_share, config.dev_share, rng)
        for split, part in parts.items():
            splits[split].extend(part)
    return SourceOutput(records=splits, report=_report(config, tally, splits, wanted))


def requested_languages(
    config: HubSourceConfig | FileSourceConfig, study: Sequence[str]
) -> list[str]:
    if config.languages:
        return list(config.languages)
    if config.kind == "files" and config.files_by_language:
        return list(config.files_by_language)
    if config.language:
        return [config.language]
    return list(study)


def _split(
    rows: list[Record], use: str, eval_share: float, dev_share: float, rng: random.Random
) -> dict:
    """A language's rows by split: `eval_share` held out for eval (with `use: both`), then
    `dev_share` for dev (with `both` or `eval`), the rest for training (with `both`)."""
    if use == "train" or (use == "eval" and not dev_share):
        return {use: rows}
    order = list(range(len(rows)))
    rng.shuffle(order)
    # At least one prompt on each side once there are enough.
    n_eval = min(max(1, round(eval_share * len(rows))), len(rows) - 1) if use == "both" else 0
    n_dev = min(max(1, round(dev_share * len(rows))), len(rows) - n_eval - 1) if dev_share else 0
    eval_part, dev_part = set(order[:n_eval]), set(order[n_eval : n_eval + n_dev])
    dev = {"dev": [r for i, r in enumerate(rows) if i in dev_part]} if dev_share else {}
    if use == "eval":
        return {"eval": [r for i, r in enumerate(rows) if i not in dev_part], **dev}
    return {
        "eval": [r for i, r in enumerate(rows) if i in eval_part],
        **dev,
        "train": [r for i, r in enumerate(rows) if i not in eval_part | dev_part],
    }


def _excluded(config: HubSourceConfig | FileSourceConfig, row: Row) -> str | None:
    """Why `where` leaves the row out, or None to keep it."""
    for column, allowed in config.where.items():
        value = cell(row.values, column)
        if value is None or str(value).strip() not in allowed:
            return f"{column} not in {allowed}"
    return None


def _row_languages(
    config: HubSourceConfig | FileSourceConfig, row: Row, wanted: list[str]
) -> list[str | None]:
    if config.columns.wide:
        return list(wanted)
    return [config.language or row.language]  # None: read from the language column


def to_record(
    name: str, config: HubSourceConfig | FileSourceConfig, row: Row, language: str | None
) -> Record:
    """Map one row to a record, in `language` or the one its language column names."""
    columns = config.columns

    def value(column: str | None, role: str) -> str | None:
        if column is None:
            return None
        return text_of(cell(row.values, column.replace("{lang}", language or "")), role)

    if language is None:
        raw = str(cell(row.values, columns.language)).strip()
        language = language_code(config, raw)
        if language is None:
            raise Skip(f"unknown language {raw!r}")
    prompt = value(columns.prompt, "user")
    if prompt is None:
        raise Skip("empty prompt")
    response = value(columns.response, "assistant")
    chosen = value(columns.chosen, "assistant")
    rejected = value(columns.rejected, "assistant")
    if config.use != "eval":
        if columns.response and response is None:
            raise Skip("empty response")
        if columns.chosen and (chosen is None or rejected is None):
            raise Skip("empty chosen or rejected")
        if chosen is not None and chosen == rejected:
            raise Skip("chosen equals rejected")
    category = value(columns.category, "user") or config.category or row.stem or config.objective
    category = config.category_values.get(category, category)
    return Record(
        id=record_id(name, language, category, prompt),
        source=name,
        language=language,
        objective=config.objective,
        category=category,
        prompt=prompt,
        response=response if response is not None else chosen,
        chosen=chosen,
        rejected=rejected,
        reference=value(columns.reference, "user"),
    )


def language_code(config: HubSourceConfig | FileSourceConfig, raw: str) -> str | None:
    """The ISO 639-1 code a language column's value names (through `language_values`, else
    the value itself, any case), or None."""
    code = config.language_values.get(raw, raw.lower())
    return code if code in ISO_639_1 else None


def cell(values: dict, column: str) -> Any:
    """The value of `column`, or inside a nested cell by a dotted path (`turns.0.content`: the
    content of the first turn); None where the path leads nowhere."""
    if column in values:
        return values[column]
    value: Any = values
    for step in column.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def column_of(column: str, available: Sequence[str]) -> str:
    """The column a name reads: itself, or a dotted path's first step."""
    return column if column in available else column.split(".", 1)[0]


def text_of(value: Any, role: str) -> str | None:
    """The text of a cell: a string, a number (pandas reads "4" from a CSV as one), or the last
    `role` message of a chat (a list of `{"role", "content"}`, as in UltraFeedback). None when
    there is no text; a list without roles is a Skip that says how to map it."""
    if isinstance(value, list):
        if value and not any(isinstance(m, dict) and "role" in m for m in value):
            # Which turn is the prompt is then a guess: the user says, by a dotted path.
            raise Skip("a list without chat roles (map one item by path, e.g. turns.0.content)")
        messages = [m for m in value if isinstance(m, dict) and m.get("role") == role]
        value = messages[-1].get("content") if messages else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


# ---------------------------------------------------------------------------------------------
# Reading rows


def _rows(
    name: str, config: HubSourceConfig | FileSourceConfig, wanted: list[str], tally: Tally
) -> Iterator[Row]:
    """Every row of the source, counted in `tally` (with the malformed lines it skips)."""
    if config.kind == "hf":
        dataset = _load(
            name,
            config.dataset,
            name=config.subset,
            split=config.split,
            revision=config.revision,
            **config.read_options,
        )
        _check_columns(name, config, dataset.column_names, config.dataset, wanted)
        for index, values in enumerate(dataset, start=1):
            tally.rows += 1
            yield Row(f"{config.dataset}[{config.split}] row {index}", values, None, None)
        return
    files, problems = _files(name, config)
    if problems:
        raise StageError(problems[0])
    for language, path, file_format in files:
        if _is_json_lines(path, file_format):
            lines = _json_lines(path, tally)
            available = sorted({key for _, values in lines for key in values})
            _check_columns(name, config, available, str(path), wanted)
            for number, values in lines:
                yield Row(f"{path} line {number}", values, language, path.stem)
            continue
        options = _read_options(config, path, file_format)
        dataset = _load(name, file_format, data_files=[str(path)], split="train", **options)
        _check_columns(name, config, dataset.column_names, str(path), wanted)
        for index, values in enumerate(dataset, start=1):
            tally.rows += 1
            yield Row(f"{path} row {index}", values, language, path.stem)


def matching(pattern: str) -> list[Path]:
    """The files a source's pattern names (a glob; `**` crosses folders), in sorted order."""
    return [Path(m) for m in sorted(glob.glob(pattern, recursive=True)) if Path(m).is_file()]


def _files(
    name: str, config: FileSourceConfig
) -> tuple[list[tuple[str | None, Path, str]], list[str]]:
    """A file source's files as (language of its group, path, format), and the problems
    found: a pattern that matches no file, a file whose format cannot be told."""
    groups = (
        config.files_by_language.items() if config.files_by_language else [(None, config.files)]
    )
    files, problems = [], []
    for language, patterns in groups:
        for pattern in patterns:
            matches = matching(pattern)
            if not matches:
                problems.append(f"data.sources.{name}: no file matches {pattern!r}")
            for path in matches:
                file_format = config.format or FORMATS.get(path.suffix.lower())
                if file_format is None:
                    problems.append(
                        f"data.sources.{name}: cannot tell the format of {path}; set `format`"
                    )
                else:
                    files.append((language, path, file_format))
    return files, problems


def _is_json_lines(path: Path, file_format: str) -> bool:
    return file_format == "json" and path.suffix.lower() == ".jsonl"


def _read_options(config: FileSourceConfig, path: Path, file_format: str) -> dict:
    options = dict(CSV_DEFAULTS) if file_format == "csv" else {}
    if path.suffix.lower() == ".tsv":
        options["sep"] = "\t"
    return options | config.read_options


def _json_lines(path: Path, tally: Tally) -> list[tuple[int, dict]]:
    """The JSON objects of a JSON Lines file by line number. A line that is not one is skipped
    and counted where it is, rather than failing the file as `datasets` does; blank lines are
    not rows."""
    rows = []
    with path.open(encoding="utf-8-sig") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            tally.rows += 1
            try:
                values = json.loads(line)
            except json.JSONDecodeError:
                values = None
            if isinstance(values, dict):
                rows.append((number, values))
            else:
                tally.skip(MALFORMED, f"{path} line {number}")
    return rows


def check_files(name: str, config: FileSourceConfig, languages: Sequence[str]) -> list[str]:
    """What `prepare` would refuse in a file source, found cheaply: patterns that match no file,
    unknown formats, files that cannot be opened, and mapped columns missing from a file's
    header (CSV), first lines (JSON Lines) or schema (parquet), and, for a language column, the
    requested languages no row is in and values that name no language (the one column is
    read through). JSON files read whole by `datasets` have no cheap header and are left to
    `prepare`."""
    wanted = requested_languages(config, languages)
    files, problems = _files(name, config)
    seen: Counter = Counter()  # language column values, over every file
    readable = bool(files) and not problems
    for _, path, file_format in files:
        options = _read_options(config, path, file_format)
        try:
            available = _header(path, file_format, options)
            if available is None:
                readable = False
                continue
            _check_columns(name, config, available, str(path), wanted)
            if config.columns.language is not None:
                seen.update(_column_values(path, file_format, options, config.columns.language))
        except StageError as error:
            problems.append(str(error))
            readable = False
        except (OSError, UnicodeDecodeError, ValueError) as error:
            problems.append(f"data.sources.{name}: cannot read {path}: {error}")
            readable = False
    if config.columns.language is not None and readable:
        problems += _language_problems(name, config, seen, wanted)
    return problems


def _language_problems(
    name: str, config: FileSourceConfig, seen: Counter, wanted: list[str]
) -> list[str]:
    """Requested languages no row is in, and language values that name no language."""
    where = f"data.sources.{name}.columns.language"
    codes: Counter = Counter()
    unknown: Counter = Counter()
    for raw, n in seen.items():
        code = language_code(config, raw)
        if code is None:
            unknown[raw] += n
        else:
            codes[code] += n
    problems = []
    absent = [code for code in wanted if not codes[code]]
    if absent:
        found = ", ".join(f"{code} ({n})" for code, n in codes.most_common()) or "none"
        problems.append(f"{where}: no row in {', '.join(absent)} (rows by language: {found})")
    if unknown:
        shown = ", ".join(f"{raw!r} ({n})" for raw, n in unknown.most_common(5))
        problems.append(
            f"{where}: values that are no ISO 639-1 code, skipped by prepare: {shown}; map them "
            "with `language_values`"
        )
    return problems


def _column_values(path: Path, file_format: str, options: dict, column: str) -> Iterator[str]:
    """Every value of one (possibly dotted) column, read without loading the other columns."""
    if file_format == "parquet":
        import pyarrow.parquet

        top = column.split(".", 1)[0]
        for values in pyarrow.parquet.read_table(path, columns=[top]).to_pylist():
            yield str(cell(values, column)).strip()
        return
    with path.open(encoding="utf-8-sig", newline="") as file:
        if file_format == "csv":
            for values in csv.DictReader(file, delimiter=options.get("sep", ",")):
                yield str(cell(values, column)).strip()
            return
        for line in file:
            try:
                values = json.loads(line)
            except json.JSONDecodeError:
                continue  # counted by prepare
            if isinstance(values, dict):
                yield str(cell(values, column)).strip()


HEADER_LINES = 100  # JSON Lines: the columns of a file are those of its first lines


def _header(path: Path, file_format: str, options: dict) -> list[str] | None:
    if file_format == "csv":
        with path.open(encoding="utf-8-sig", newline="") as file:
            return next(csv.reader(file, delimiter=options.get("sep", ",")), [])
    if file_format == "parquet":
        import pyarrow.parquet

        return list(pyarrow.parquet.read_schema(path).names)
    if not _is_json_lines(path, file_format):
        return None
    keys: set[str] = set()
    with path.open(encoding="utf-8-sig") as file:
        for _, line in zip(range(HEADER_LINES), file, strict=False):
            try:
                values = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(values, dict):
                keys |= set(values)
    return sorted(keys)


def _load(source: str, path: str, **kwargs):
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    what = kwargs.get("data_files", [path])[0]
    try:
        return datasets.load_dataset(path, **kwargs)
    except Exception as error:  # datasets raises many types; all mean the same to the user
        raise StageError(f"data.sources.{source}: cannot load {what}: {error}") from error


def _check_columns(
    name: str,
    config: HubSourceConfig | FileSourceConfig,
    available: list[str],
    what: str,
    wanted: list[str],
) -> None:
    """Every mapped column is in `available`; a wide file's missing columns are named for every
    language that lacks them."""
    mapped = {f"columns.{key}": column for key, column in config.columns.model_dump().items()}
    mapped |= {f"where.{column}": column for column in config.where}
    for field_name, column in mapped.items():
        if column is None:
            continue
        by_language = {code: column.replace("{lang}", code) for code in wanted}
        missing = {
            code: name_
            for code, name_ in by_language.items()
            if column_of(name_, available) not in available
        }
        if not missing:
            continue
        first = column_of(next(iter(missing.values())), available)
        where = f"data.sources.{name}.{field_name}"
        if "{lang}" in column:
            raise StageError(
                f"{where}: no column for {', '.join(missing)} in {what} (missing "
                f"{', '.join(repr(column_of(c, available)) for c in missing.values())})"
                + did_you_mean(first, available)
            )
        raise StageError(f"{where}: no column {first!r} in {what}{did_you_mean(first, available)}")


def _report(
    config: HubSourceConfig | FileSourceConfig, tally: Tally, splits: dict, wanted: list[str]
) -> dict:
    return {
        "kind": config.kind,
        "rows": tally.rows,
        "kept": kept_per_language(splits, wanted),
        "skipped": dict(tally.skipped),
        "filtered": dict(tally.filtered),
        "examples": {reason: list(where) for reason, where in tally.examples.items()},
    }
