"""What a `translate@<name>` or `synthesize@<name>` stage wrote, read as a file source whose
columns are known: each row has its language, category, prompt and, where made, its answers."""

from __future__ import annotations

import json
from collections.abc import Sequence

from mixmerge import paths
from mixmerge.config.data import FileSourceConfig, GeneratedSourceConfig
from mixmerge.core.errors import StageError
from mixmerge.data.sources import table
from mixmerge.data.sources.output import SourceOutput

ANSWERS = ("response", "chosen", "rejected")


def as_file_source(config: GeneratedSourceConfig, languages: Sequence[str]) -> FileSourceConfig:
    generator, _, name = config.from_.partition("/")
    path = paths.generated(generator, name)
    if not path.is_file():
        raise StageError(f"no {path}: run `dvc repro {generator}@{name}` first")
    with path.open(encoding="utf-8") as file:
        rows = [json.loads(line) for line in file if line.strip()]
    # By default, the languages the stage wrote (a translation skips the source's own).
    written = {row["language"] for row in rows}
    present = [code for code in languages if code in written]
    columns = {"prompt": "prompt", "language": "language", "category": "category"}
    # The answers the stage wrote (none, for a translation of prompts alone); a row without
    # them, if some have them, is skipped and counted as any source's would be.
    columns |= {field: field for field in ANSWERS if any(row.get(field) for row in rows)}
    return FileSourceConfig.model_validate(
        {
            "kind": "files",
            "files": [str(path)],
            "objective": config.objective,
            "use": config.use,
            "eval_share": config.eval_share,
            "dev_share": config.dev_share,
            "seed": config.seed,
            "languages": config.languages or present or None,
            "max_per_language": config.max_per_language,
            "columns": columns,
        },
        context={"languages": list(languages)},
    )


def read(name: str, config: GeneratedSourceConfig, languages: Sequence[str]) -> SourceOutput:
    output = table.read(name, as_file_source(config, languages), languages)
    output.report["kind"] = config.kind
    output.report["from"] = config.from_
    return output
