"""ZFS snapshots of a TrueNAS app's host-path datasets: pure builders and parsers (no I/O).

Middleware methods (truenas/middleware, src/middlewared/middlewared/plugins/):
* 24.10 and 25.04 expose `zfs.snapshot.create` (`zfs_/snapshot.py` `do_create`, one object
  `{dataset, name, recursive, ...}`), `zfs.snapshot.query`, `zfs.snapshot.rollback`
  (`zfs_/snapshot_actions.py` `rollback(id, {recursive, recursive_clones, force,
  recursive_rollback})`, i.e. `zfs rollback [-f] [-r] [-R] ID`) and `zfs.snapshot.delete`;
* 25.10 made `zfs.snapshot.*` private and exposes the same calls as `pool.snapshot.*`
  (`pool_/snapshot.py` `PoolSnapshotService`, `api/v25_10_0/pool_snapshot.py`).
* `pool.dataset.query` (all versions) lists datasets with their `mountpoint`.

homefleet rolls back without `recursive`: when a newer snapshot exists (a periodic snapshot
task ran meanwhile), `zfs rollback` refuses, and homefleet says so instead of destroying
snapshots it did not take.
"""

from __future__ import annotations

import re
import time
from typing import Optional

PREFIX = "homefleet-"
POOL_SNAPSHOT_SINCE = (25, 10)
NAME = re.compile(r"^homefleet-(?P<app>[a-z][-a-z0-9]*)-(?P<stamp>\d{8}-\d{6})$")


def method(verb: str, version: tuple) -> str:
    """`zfs.snapshot.<verb>` before 25.10, `pool.snapshot.<verb>` from 25.10."""
    return ("pool.snapshot." if version >= POOL_SNAPSHOT_SINCE else "zfs.snapshot.") + verb


def snapshot_name(app: str, now: Optional[float] = None) -> str:
    return f"{PREFIX}{app}-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))


def create_payload(dataset: str, name: str) -> dict:
    return {"dataset": dataset, "name": name, "recursive": False}


ROLLBACK_OPTIONS = {"recursive": False, "recursive_clones": False, "force": False, "recursive_rollback": False}


def bind_sources(config) -> list:
    """Host paths the compose bind-mounts (short `SRC:DST[:MODE]` or long `type: bind`)."""
    services = config.get("services") if isinstance(config, dict) else None
    out = []
    for body in (services or {}).values() if isinstance(services, dict) else []:
        for item in (body.get("volumes") or []) if isinstance(body, dict) else []:
            if isinstance(item, dict):
                source = item.get("source") if item.get("type", "bind") == "bind" else None
            else:
                source = str(item).split(":", 1)[0]
            if isinstance(source, str) and source.startswith("/") and source not in out:
                out.append(source.rstrip("/") or "/")
    return out


def mountpoint_candidates(paths: list) -> list:
    """Every folder above (and at) each path: the mountpoints that may hold it."""
    out = []
    for path in paths:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            candidate = "/" + "/".join(parts[:i])
            if candidate not in out:
                out.append(candidate)
    return out


def dataset_query(paths: list) -> tuple:
    """(filters, options) of the `pool.dataset.query` that finds the datasets holding `paths`."""
    return [["mountpoint", "in", mountpoint_candidates(paths)]], {"select": ["id", "mountpoint"]}


def dataset_of(path: str, entries) -> Optional[str]:
    """The dataset whose mountpoint holds `path` most closely, from `pool.dataset.query` entries."""
    best = None
    for entry in entries if isinstance(entries, list) else []:
        mount = entry.get("mountpoint") if isinstance(entry, dict) else None
        if isinstance(mount, str) and (path == mount or path.startswith(mount.rstrip("/") + "/")):
            if best is None or len(mount) > len(best[1]):
                best = (entry.get("id"), mount)
    return best[0] if best else None


def inside(path: str, mount: str) -> bool:
    return path == mount or path.startswith(mount.rstrip("/") + "/")


def ours(entries, app: str, dataset: str) -> list:
    """homefleet's snapshots of `app` on `dataset`, oldest first, from a snapshot query."""
    found = []
    for entry in entries if isinstance(entries, list) else []:
        sid = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(sid, str) or "@" not in sid:
            continue
        ds, name = sid.split("@", 1)
        match = NAME.match(name)
        if ds == dataset and match and match["app"] == app:
            found.append((match["stamp"], sid))
    return [sid for _, sid in sorted(found)]
