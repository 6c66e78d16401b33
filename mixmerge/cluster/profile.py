"""A profile run through DVC without touching the study's params.yaml: `mixmerge run --profile`.

A profile (configs/<name>.yaml) is a params file that extends another. DVC reads params.yaml
only, so the profile runs in a workspace of its own: a git worktree at `.profiles/<name>/`
(ignored by git and DVC), at the code as it is now (the last commit with the uncommitted
changes to tracked files, `git stash create`), whose params.yaml is the profile composed with
what it extends. Its outputs and dvc.lock are its own, its DVC cache is the study's, so that
every stage the two share (same code, params and inputs) is restored from DVC's run cache, not
run again.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mixmerge.config.profiles import resolved_text
from mixmerge.core.errors import StageError

FOLDER = ".profiles"  # under the repository root, ignored by git (.gitignore) and DVC


def workspace(root: Path, profile: Path) -> Path:
    """The workspace of `profile` (a params file) for the repository at `root`, made or brought
    to the current code, with the composed profile as its params.yaml."""
    root = root.resolve()
    folder = root / FOLDER / profile.stem
    code = _git(root, "stash", "create") or _git(root, "rev-parse", "HEAD")
    if not (folder / ".git").exists():
        _git(root, "worktree", "prune")
        folder.parent.mkdir(exist_ok=True)
        _git(root, "worktree", "add", "--detach", "--force", str(folder), code)
    else:
        # The code follows the study's; the params.yaml is written anew below, and the lock
        # (tracked, so that a checkout would reset it) stays the profile's own record.
        lock = folder / "dvc.lock"
        kept = lock.read_bytes() if lock.is_file() else None
        _git(folder, "checkout", "--detach", "--force", code)
        if kept is not None:
            lock.write_bytes(kept)
    (folder / "params.yaml").write_text(resolved_text(profile), encoding="utf-8")
    _run(folder, "dvc", "cache", "dir", "--local", str(root / ".dvc" / "cache"))
    return folder


def _git(where: Path, *arguments: str) -> str:
    return _run(where, "git", *arguments)


def _run(where: Path, *command: str) -> str:
    """What `command` prints, run in `where`; a StageError saying why when it fails."""
    done = subprocess.run(command, cwd=where, capture_output=True, text=True)
    if done.returncode != 0:
        raise StageError(f"{' '.join(command)} failed in {where}: {done.stderr.strip()}")
    return done.stdout.strip()
