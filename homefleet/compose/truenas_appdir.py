"""The app's folder on a TrueNAS host: relative bind mounts and the files shipped beside the compose file.

`./data:/data` and `./config/app.conf:/etc/app.conf:ro` in a published compose file resolve under
`<appRoot>/<app>/` on the NAS, where `appRoot` is the host key (default `/mnt/<pool>/apps`, `pool`
being the host's pool). The collector is the Proxmox one (proxmox_appdir.AppDir) with TrueNAS's
owner: no id map, the service's numeric `user:` or else 568, the `apps` user TrueNAS apps run as.
Docker on the NAS bind-mounts files as well as folders, so both are rewritten to the absolute path.

An uploaded file's content hash reaches the compose as the label `io.homefleet.files` of every
service that mounts it (a file, or a folder holding it): an edit is an update of the app in the
preview, and `compose up` recreates only the containers whose label changed.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from pathlib import Path
from typing import Optional

from .proxmox_appdir import TRUENAS_OWNER, AppDir

FILES_LABEL = "io.homefleet.files"
_INDEX = re.compile(r"\.volumes\[(\d+)\]$")


def default_root(app_root: Optional[str], pool: Optional[str]) -> Optional[str]:
    return app_root or (f"/mnt/{pool}/apps" if pool else None)


def app_dir(app_root, pool, app: str, compose_dir: Path, files, fail, host_key: str) -> AppDir:
    fix = (f"Set pool: <your pool> (apps' folders are then /mnt/<pool>/apps/<app>) or appRoot: /mnt/<pool>/apps "
           f"on {host_key or 'the host'} (docs/truenas.md)")
    found = AppDir(default_root(app_root, pool), app, compose_dir, files, fail, owner=TRUENAS_OWNER, root_fix=fix)
    found.host_key = host_key
    return found


def rewrite(found: Optional[AppDir], service, body: dict, fail) -> dict:
    """`body` (the service as sent) with its relative bind sources made absolute and the files label set."""
    if found is None or not any(m.relative for m in service.volumes):
        return body
    volumes = list(body.get("volumes") or [])
    used = []
    for mount in service.volumes:
        index = _INDEX.search(mount.where or "")
        if not mount.relative or index is None or int(index.group(1)) >= len(volumes):
            continue
        host, kind = found.relative_bind(mount.where, mount.source or "", service)
        if host is None:
            continue
        i = int(index.group(1))
        item = volumes[i]
        if isinstance(item, dict):
            volumes[i] = {**item, "source": host}
        else:
            volumes[i] = host + str(item)[len(str(item).split(":", 1)[0]):]
        rel = host[len(found.root) + 1:]
        used += [(path, sha) for path, (_, sha, _) in found.files.items()
                 if path == rel or (kind == "dir" and path.startswith(rel + "/"))]
    body = {**body, "volumes": volumes}
    if used:
        digest = "sha256:" + hashlib.sha256("".join(f"{p}\0{s}\n" for p, s in sorted(set(used))).encode()).hexdigest()
        labels = body.get("labels")
        if isinstance(labels, list):
            body["labels"] = [x for x in labels if not str(x).startswith(FILES_LABEL + "=")] + [f"{FILES_LABEL}={digest}"]
        else:
            body["labels"] = {**(labels or {}), FILES_LABEL: digest}
    return body


def inputs(found: Optional[AppDir]) -> Optional[dict]:
    """TrueNASAppFiles inputs (contents base64; the resource keeps them secret), or None: each file
    belongs to the owner of its folder (the app's folder: 568)."""
    plan = found.plan() if found is not None else None
    if plan is None:
        return None
    owners = {d["path"]: d["uid"] for d in plan["dirs"]}
    for item in plan["files"]:                       # `./config/app.conf` alone: its folder is made too
        parent = posixpath.dirname(item["path"])
        while parent and parent not in owners:
            owners[parent] = TRUENAS_OWNER.default
            plan["dirs"].append({"path": parent, "uid": owners[parent], "gid": owners[parent]})
            parent = posixpath.dirname(parent)
    plan["dirs"].sort(key=lambda d: d["path"])
    for item in plan["files"]:
        uid = owners.get(posixpath.dirname(item["path"]), TRUENAS_OWNER.default)
        item.update(uid=uid, gid=uid)
    return {**plan, "uid": TRUENAS_OWNER.default, "gid": TRUENAS_OWNER.default}
