"""Owner and mode of directories on container volumes, as the CT sees them.

The simulator runs as an ordinary user, so it cannot chown files to 100000+N. It keeps the
owners PVE and the image would give instead, in `$SIM_STATE/sim/volume-attrs.json`:
`{volid: {relative dir: [uid, gid, mode]}}`, ids as seen inside the CT (0 = the CT's root,
host uid 100000 in an unprivileged CT). A directory with no record is the CT root's, mode 0755:
that is what a new volume's top is (pve-container `LXC.pm` `mkfs` runs
`mkfs.ext4 -E root_owner=$root_uid:$root_gid`; `create_disks` chowns a new ZFS subvolume to
the same ids) and what the extractor gives directories the image does not own otherwise.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager

from . import paths

ROOT_DIR = (0, 0, 0o755)


@contextmanager
def _db():
    paths.private_dir().mkdir(parents=True, exist_ok=True)
    db_path = paths.private_dir() / "volume-attrs.json"
    with open(paths.private_dir() / "volume-attrs.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(db_path.read_text()) if db_path.exists() else {}
        before = json.dumps(data, sort_keys=True)
        yield data
        if json.dumps(data, sort_keys=True) != before:
            tmp = db_path.with_suffix(f".tmp.{os.getpid()}")
            tmp.write_text(json.dumps(data, sort_keys=True))
            os.replace(tmp, db_path)


def _rel(path: str) -> str:
    return path.strip("/")


def get(volid: str, rel: str) -> tuple[int, int, int]:
    with _db() as data:
        entry = (data.get(volid) or {}).get(_rel(rel))
    return tuple(entry) if entry else ROOT_DIR


def set_attrs(volid: str, rel: str, attrs: tuple[int, int, int]) -> None:
    with _db() as data:
        data.setdefault(volid, {})[_rel(rel)] = list(attrs)


def record_tree(volid: str, attrs: dict[str, tuple[int, int, int]]) -> None:
    """The extracted image's directories that are not root's 0755 (the rest default to that)."""
    with _db() as data:
        entry = data.setdefault(volid, {})
        for path, value in attrs.items():
            if tuple(value) != ROOT_DIR:
                entry[_rel(path)] = list(value)


def forget(volid: str) -> None:
    with _db() as data:
        data.pop(volid, None)


def rename(old: str, new: str) -> None:
    with _db() as data:
        if old in data:
            data[new] = data.pop(old)
