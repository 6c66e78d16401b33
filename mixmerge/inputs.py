"""Files that params name, as DVC dependencies of the stages that read them.

`prepare` reads the files of `files` sources and of local dataset folders; `base` reads a
GGUF file or a local model folder. DVC takes a stage's deps from dvc.yaml alone, and its
templating can neither expand a list from params into them (treeverse/dvc#8171) nor name a key
that a params table may lack (a builtin base has no `path`). So each such stage depends on a
folder, inputs/<stage>/, that holds one symlink per file it reads: DVC hashes what a symlink
points to, so a file edited or replaced in place changes the folder's hash, and `dvc status`
names the stage.

The links follow the params: the stage rewrites its own whenever it runs (a params change
re-runs it), and `mixmerge run` rewrites prepare's before DVC starts, which is when a file that
newly matches a source's glob is seen. They are committed with dvc.lock, which records the
hashes of what they point to.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from mixmerge import paths


def absolute(path: Path | str, root: Path = paths.ROOT) -> Path:
    """`path` (relative to `root`) made absolute, `..` resolved and symlinks kept, as the stage
    that opens it sees it."""
    return Path(os.path.abspath(Path(root) / path))


def local_files(path: str, root: Path = paths.ROOT) -> list[Path]:
    """The files of a local file or folder, absolute (none for a hub id), hidden ones left out."""
    path = absolute(path, root)
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    inside = (p for p in path.rglob("*") if not p.relative_to(path).parts[0].startswith("."))
    return sorted(p for p in inside if p.is_file())


def link_inputs(stage: str, files: Iterable[Path], root: Path = paths.ROOT) -> None:
    """Make inputs/<stage>/ hold one link per file (absolute paths) and nothing stale: at the
    file's path in the repository, or under `outside/` at its absolute path."""
    top = absolute(".", root)
    folder = top / paths.INPUTS / stage
    wanted = {
        folder / (f.relative_to(top) if f.is_relative_to(top) else Path("outside", *f.parts[1:])): f
        for f in files
    }
    # Its README stays: it keeps the folder in git when params name no file, as DVC needs every
    # dep to exist.
    for path in sorted(folder.rglob("*"), reverse=True):  # a folder's files before the folder
        if path.is_symlink() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
    for link, file in wanted.items():
        # Inside the repository, relative: the link holds in any clone.
        target = os.path.relpath(file, link.parent) if file.is_relative_to(top) else str(file)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(target)
