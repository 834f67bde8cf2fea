"""`user:` by name (`user: unit:root`, netbox-docker's form): resolved from the image's own /etc/passwd and
/etc/group, as Docker does when it starts the container and as PVE does for an image's `User`
(pve-container src/PVE/LXC/Create.pm `resolve_oci_user`: the uid by name from passwd; the gid from the
group part — a number, or a name in /etc/group — else the user's primary gid from passwd).

The model cannot read the image, so a named user is planned as `{"name", "group", "at", "image"}`; the
template pull reads the image's users (OciTemplate's `image_config.users`/`groups`, providers/hosts/
image_users.py) and `resolve` turns the plan into PVE's `lxc.init.uid`/`gid` (keeping `cwd`). A name
the image does not have becomes `{"error": ...}`, which the CT's check reports with the file and key.
"""

from __future__ import annotations

import re
from typing import Optional

_NAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$")


def named(value, at: str, image: str) -> Optional[dict]:
    """`user:` holding a name (`name`, `name:group`, `name:gid`, `uid:group`) -> the plan, or None when it is
    not `user[:group]` with names Docker could look up."""
    text = str(value).strip()
    user, sep, group = text.partition(":")
    if not user or (sep and not group) or ":" in group:
        return None
    for part in (user, group):
        if part and not (part.isdigit() or _NAME.match(part)):
            return None
    return {"name": user, "group": group or None, "at": at, "image": image}


def resolve(init: dict, image_config: Optional[dict]) -> dict:
    """The planned init (named user) -> {"uid", "gid"[, "cwd"]}, or {"error": message}."""
    config = image_config or {}
    users = config.get("users") or {}
    groups = config.get("groups") or {}
    name, group = init["name"], init.get("group")
    rest = {k: v for k, v in init.items() if k in ("cwd", "env")}
    if name.isdigit():
        uid, primary = int(name), next((g for u, g in users.values() if u == int(name)), 0)
    elif name in users:
        uid, primary = users[name]
    else:
        known = ", ".join(sorted(users, key=lambda n: (n == "root", n))[:8]) or "none"
        return {"error": f"{init['at']}: the image {init['image']} has no user {name!r} in its /etc/passwd (Docker "
                         f"would not start it either). Use a user the image has ({known}) or a numeric uid[:gid]"}
    if group is None:
        gid = primary
    elif group.isdigit():
        gid = int(group)
    elif group in groups:
        gid = groups[group]
    else:
        return {"error": f"{init['at']}: the image {init['image']} has no group {group!r} in its /etc/group. "
                         "Use a group the image has, or a numeric gid"}
    return {"uid": int(uid), "gid": int(gid), **rest}


UNPRIVILEGED_BASE = 100000  # PVE's default id map: the CT's uid 0 is the host's 100000


def resolve_dirs(dirs: list, configs: dict) -> list:
    """AppFiles folders: one marked with a named user (`user`, `image`: proxmox_appdir.py) is owned by that user's
    uid and primary gid in the image (`configs`: image -> OciTemplate image_config), mapped into the CT's range;
    an image not read yet or a name it lacks keeps the CT's root. The markers are dropped."""
    out = []
    for item in dirs:
        entry = {k: v for k, v in item.items() if k not in ("user", "image")}
        if "user" in item:
            found = ((configs.get(item["image"]) or {}).get("users") or {}).get(item["user"])
            if found:
                entry["uid"], entry["gid"] = UNPRIVILEGED_BASE + int(found[0]), UNPRIVILEGED_BASE + int(found[1])
        out.append(entry)
    return out
