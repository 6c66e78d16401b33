"""Profiles: a params file that says only how it differs from another.

A file with a top-level `extends: <path>` (relative to the file) is the file it names with its
own keys laid over it, as OmegaConf merges: mappings key by key, all the way down; a list, a
number, a string or null replaces what it lies over. Two keys of a mapping say more:
`_replace_: true`, the mapping replaces the one under it instead of merging into it (a base of
another source, a table of other merges); `_delete_: [keys]`, those keys of the mapping under
it go (a merge the profile does not make; a key back to its default). The file it extends may
extend another in turn.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mixmerge.config.common import ParamsError, Problem, UniqueKeyLoader
from mixmerge.core.suggest import did_you_mean

EXTENDS, REPLACE, DELETE = "extends", "_replace_", "_delete_"


def read_params(path: str | Path) -> Any:
    """The params file at `path` as YAML, refusing a key given twice, composed with the files
    it extends."""
    return _composed(Path(path), ())


def resolved_text(path: str | Path) -> str:
    """The params file at `path` as one file: a profile composed with those it extends, as
    `mixmerge validate --show` prints it (comments are not kept)."""
    raw = read_params(path)
    return yaml.safe_dump(
        raw, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as file:
            return yaml.load(file, Loader=UniqueKeyLoader)  # noqa: S506 (a safe loader)
    except FileNotFoundError:
        raise ParamsError(str(path), [Problem("<file>", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ParamsError(str(path), [Problem("<file>", f"cannot read: {error}")]) from None
    except yaml.YAMLError as error:
        raise ParamsError(str(path), [Problem("<file>", f"not valid YAML: {error}")]) from None


def _composed(path: Path, trail: tuple[Path, ...]) -> Any:
    raw = _read_yaml(path)
    if not isinstance(raw, Mapping) or EXTENDS not in raw:
        return raw
    under = raw[EXTENDS]
    if not isinstance(under, str):
        why = "the params file this one overlays: a path, relative to this file"
        raise ParamsError(str(path), [Problem(EXTENDS, why, under)])
    target = path.parent / under
    if target.resolve() in (*trail, path.resolve()):
        raise ParamsError(str(path), [Problem(EXTENDS, "files extend each other", under)])
    base = _composed(target, (*trail, path.resolve()))
    try:
        return overlay(base, {key: value for key, value in raw.items() if key != EXTENDS})
    except _Misplaced as problem:
        raise ParamsError(str(path), [problem.args[0]]) from None


class _Misplaced(Exception):
    """A `_replace_` or `_delete_` that cannot be carried out (its Problem)."""


def overlay(under: Any, over: Any, where: str = "") -> Any:
    """`over` laid over `under` (the module's rules), neither changed."""
    if not isinstance(over, Mapping):
        return copy.deepcopy(over)
    over = dict(over)
    replace, delete = over.pop(REPLACE, False), over.pop(DELETE, [])
    at = f"{where}." if where else ""
    if not isinstance(replace, bool):
        raise _Misplaced(Problem(at + REPLACE, "true or false", replace))
    if not isinstance(delete, list) or not all(isinstance(key, str) for key in delete):
        raise _Misplaced(Problem(at + DELETE, "a list of the keys to remove", delete))
    if replace or not isinstance(under, Mapping):
        if delete:
            why = "nothing to remove keys from: the mapping under it is replaced or absent"
            raise _Misplaced(Problem(at + DELETE, why, delete))
        return {key: overlay(None, value, at + str(key)) for key, value in over.items()}
    unknown = [key for key in delete if key not in under]
    if unknown:
        hint = did_you_mean(unknown[0], [str(key) for key in under])
        raise _Misplaced(Problem(at + DELETE, f"no key {unknown[0]!r} to remove{hint}", delete))
    out = {key: copy.deepcopy(value) for key, value in under.items() if key not in delete}
    for key, value in over.items():
        out[key] = overlay(out.get(key), value, at + str(key))
    return out
