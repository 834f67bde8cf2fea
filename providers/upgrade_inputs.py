"""The ProxmoxCT inputs of a safe upgrade (issue 15; set by homefleet/plan.py from the stack's
backupStorage, keepBackups, rollback, healthTimeout): their defaults, and what a preview says.

They change nothing on the CT itself: they steer what `up` does around a recreate (the backup,
the health gate, the rollback) and a `delete_data` delete (the backup). A state written before
these inputs existed holds none of them, and means the defaults: so a missing value equals its
default, and only a real change is a (host-untouched) update that records the new value.
"""

import re

from . import log
from .base import target_of

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # Pulumi's "known after apply" in a preview

# The defaults homefleet/stack.py documents (Host.backupStorage, keepBackups, App.rollback) and
# healthTimeout; homefleet/preview_summary.py UPGRADE_DEFAULTS repeats them (the model never
# imports providers; tests/model/test_upgrade_keys.py checks they agree).
DEFAULTS = {"backup_storage": "local", "keep_backups": 3, "rollback": True, "health_timeout": 300,
            "health_settle": 5}


# A PVE storage ID (pve-common src/PVE/JSONSchema.pm parse_id), as homefleet/stack.py checks it.
_STORAGE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9._-]*[A-Za-z0-9]$")


def problems(news: dict) -> list:
    """[(input, message)] for values the stack model would have refused (a provider used directly)."""
    out = []
    storage, keep = news.get("backup_storage"), news.get("keep_backups")
    if storage not in (None, UNKNOWN) and (not isinstance(storage, str) or not _STORAGE_ID.match(storage)
                                           or len(storage) > 64):
        out.append(("backup_storage", f"{storage!r} is not a PVE storage ID (letters, digits, '-', '_', '.'; "
                                      "starting with a letter, ending with a letter or digit), such as local"))
    if keep not in (None, UNKNOWN) and (isinstance(keep, bool) or not isinstance(keep, (int, float))
                                        or int(keep) != keep or not 1 <= keep <= 1000):
        out.append(("keep_backups", f"must be a whole number from 1 to 1000, got {keep!r}"))
    for key in ("rollback",):
        if news.get(key) not in (None, UNKNOWN) and not isinstance(news[key], bool):
            out.append((key, f"must be true or false, got {news[key]!r}"))
    return out


def settings(props: dict) -> dict:
    """The values, a missing or null one read as its default."""
    return {key: default if props.get(key) is None else props[key] for key, default in DEFAULTS.items()}


def changed(olds: dict, news: dict) -> list:
    """The inputs whose value moved, a missing one counted as its default."""
    before, after = settings(olds), settings(news)
    return [key for key in DEFAULTS if before[key] != after[key]]


def plan_text(props: dict, ct: str) -> str:
    """'backup to local, then recreate CT 501, health gate 300 s' (+ ', rollback off')."""
    s = settings(props)
    gate = f", health gate {s['health_timeout']} s" if props.get("running", True) else ", no health gate (not running)"
    return f"backup to {s['backup_storage']}, then recreate {ct}{gate}" + ("" if s["rollback"] else ", rollback off")


def bind_mounts_text(props: dict) -> str:
    """'/tank/media (at /media), ...' for the CT's bind mounts, or '' when it has none."""
    mounts = [m for m in props.get("mounts") or [] if isinstance(m, dict) and m.get("source")]
    return ", ".join(f"{m['source']} (at {m.get('path', '?')})" for m in mounts)


def _slot_moves(olds: dict, news: dict) -> bool:
    """A volume slot (mpN: volumes first, in order) gets another path: ct_data.volume_path_changes
    makes the update a recreate."""
    paths = [[v.get("path") for v in props.get("volumes") or [] if isinstance(v, dict)] for props in (olds, news)]
    return any(a != b for a, b in zip(*paths))


def say_plan(olds: dict, news: dict) -> None:
    """At a diff (so in `pulumi preview` and `up`): what a recreate in place will do (the backup,
    the recreate, the health gate) and which bind mounts the backup leaves out. A template known
    only after apply (a new image being pulled) counts as an image upgrade."""
    vmid = news.get("vmid")
    if not olds.get("vmid") or (vmid not in (None, UNKNOWN) and int(vmid) != int(olds["vmid"])) \
            or str((olds.get("host") or {}).get("name")) != str((news.get("host") or {}).get("name")):
        return  # not in place: a replace (a new vmid, another host) takes no backup
    template = news.get("template")
    upgrade = template is not None and template != olds.get("template")
    recreate = upgrade or any(news.get(k) not in (None, UNKNOWN) and news.get(k) != olds.get(k)
                              for k in ("unprivileged", "rootfs_storage")) or _slot_moves(olds, news)
    if not recreate:
        return
    ct = f"CT {olds['vmid']}"
    target, app = target_of(olds).name, str(news.get("app") or olds.get("app") or "?")
    what = "image upgrade" if upgrade and news.get("template_kind", "oci") == "oci" else "recreate"
    log.info(target, app, f"{what} of {ct}: {plan_text(news, ct)}")
    mounts = bind_mounts_text(news)
    if mounts:
        log.info(target, app, f"warning: bind mounts are not in the backup of {ct}: {mounts}; "
                              "they stay on the host as they are (back them up yourself)")
