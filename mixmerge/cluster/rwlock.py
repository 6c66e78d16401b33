"""DVC's record of which process reads or writes which stage file (`rwlock` in the `tmp`
folder of `.dvc`), mended where a killed job tore it.

DVC rewrites that file in place each time a stage takes or gives back its files. A job that a
scheduler kills (cancelled, preempted, requeued) while its DVC rewrites it leaves the file cut
short, and every later `dvc repro` in the workspace fails on it (`RWLockFileCorruptedError`)
until someone removes it by hand. Each job's script therefore mends it first, as DVC's own
message would have a person do: under DVC's guard of the file, a record that no longer parses
is replaced by an empty one. What the torn file held is lost either way; the processes it
named are gone or will find their entries gone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FILE = Path(".dvc") / "tmp" / "rwlock"


def torn(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (ValueError, UnicodeDecodeError):
        return True
    return False


def mend(root: Path) -> bool:
    """Replace `root`'s torn rwlock by an empty record; whether it was torn."""
    path = root / FILE
    if not torn(path):  # read without DVC's guard: the common case costs no import of DVC
        return False
    from dvc.lock import make_lock
    from dvc.repo import Repo

    with Repo(str(root)) as repo:  # the guard must be the kind DVC takes here (hard links on NFS)
        hardlink = repo.config["core"].get("hardlink_lock", False)
    with make_lock(
        str(path.with_name("rwlock.lock")), tmp_dir=str(path.parent), hardlink_lock=hardlink
    ):
        if not torn(path):  # it was being rewritten, not torn
            return False
        path.write_text("{}", encoding="utf-8")
    return True


if __name__ == "__main__":
    if mend(Path(sys.argv[1])):
        print(f"mixmerge: {FILE} was torn (a job killed while DVC rewrote it); emptied it")
