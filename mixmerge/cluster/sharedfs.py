"""What DVC needs when the workspace lies on a file system every node of a cluster shares.

On NFS, Lustre, GPFS and their kin, `fcntl` locks may not reach other nodes: DVC's
`core.hardlink_lock` makes its locks hard links, which those file systems do make atomically.
And a stage's outputs are moved into the cache when DVC commits them, then put back into the
workspace: `cache.type: hardlink,symlink` puts them back as links, where the default copy would
write every 16 GB model twice more.
"""

from __future__ import annotations

from pathlib import Path

# File systems whose files other machines share (as /proc/mounts names them).
NETWORK = ("nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "glusterfs", "cifs",
           "smb3", "fuse.sshfs", "panfs", "wekafs", "fuse.weka")  # fmt: skip


def filesystem_of(path: Path) -> str:
    """The type of the file system `path` lies on, from /proc/mounts ("" where unknown)."""
    path = path.resolve()
    best, kind = "", ""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = path == Path(point) or Path(point) in path.parents
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def check_shared_filesystem(root: Path) -> list[str]:
    """On a network file system, set what DVC needs in the workspace's local DVC config
    (`.dvc/config.local`, not committed) where it is unset; the lines that say what was done."""
    kind = filesystem_of(root)
    if kind not in NETWORK:
        return []
    from dvc.repo import Repo

    said = []
    with Repo(str(root)) as repo:
        # What any level of DVC's config sets (the merged config fills in DVC's defaults).
        levels = [repo.config.load_one(level) for level in repo.config.LEVELS]
        explicit = {(section, key) for level in levels for section in ("core", "cache")
                    for key in level.get(section, {})}  # fmt: skip
        with repo.config.edit("local") as local:
            if ("core", "hardlink_lock") not in explicit:
                local.setdefault("core", {})["hardlink_lock"] = True
                said.append(f"{kind}: set core.hardlink_lock in .dvc/config.local")
            if ("cache", "type") not in explicit:
                local.setdefault("cache", {})["type"] = "hardlink,symlink"
                said.append(f"{kind}: set cache.type hardlink,symlink in .dvc/config.local")
    return said
