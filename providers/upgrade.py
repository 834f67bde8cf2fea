"""A CT's safe upgrade (issue 15 item 3): backup -> recreate -> health gate -> rollback.

Called from ProxmoxCTProvider (`_recreate`, `update`, `delete`); the provider passes itself
for the steps it owns (the park/holder recreate, the carry-over of pool, ACLs and firewall).
Plain functions, no state: the provider is pickled into the Pulumi state.

1. Backup (providers/backups.py): before every recreate (it replaces the CT, and a new image
   or a privilege change may migrate the data on its volumes) and before a `deleteData` delete.
   Its PVE notes line names the stack, app, vmid and the reason; that is how it is found again.
2. Recreate: the existing park/holder path (ProxmoxCTProvider._replace).
3. Health gate (providers/health.py) within `health_timeout`.
4. Unhealthy and `rollback` true: `pct restore --force` of that backup at the same vmid (the
   archive carries the config: template line, env, net0 with its MAC and address), the carried
   pool/ACL/firewall put back, the old version's health checked, then the update fails with the
   check's evidence and the backup restored. A failed update leaves the old outputs in the
   state, so the next preview still shows the upgrade.
5. Healthy: prune this app's own backups to `keep_backups` (never the one just taken).

Interrupted runs are found again from what the host holds (the CT's template line, its `lock`,
this app's holder and backups) before the provider applies the spec again: `resume_restore`,
`resume_gate`, `created_again`.
"""

import re
import time
from typing import Optional

from . import backups, health, log
from .base import target_of
from .ct_data import write
from .ct_outputs import template_of
from .errors import HostCommandError
from .hosts import pct, vzdump
from .transport import run

RISKY = ("template", "unprivileged", "rootfs", "volumes")


class UpgradeFailed(Exception):
    """The new version did not become healthy; says what was seen and what was restored."""


def image_of(props: dict) -> str:
    """The app's image (or classic template) for messages: the template's file name."""
    return (props.get("template") or "?").split(":", 1)[-1].removeprefix("vztmpl/")


def template_stem(volid: str) -> str:
    """`local:vztmpl/ghcr.io_homefleet_test-app_2.3_754649e7940817ef_2eb8d623d3e4.tar` ->
    `ghcr.io_homefleet_test-app_2.3` (an OCI archive name ends in an id and a digest: skopeo.archive_name)."""
    name = re.sub(r"\.tar(\.\w+)?$", "", volid.split(":", 1)[-1].removeprefix("vztmpl/"))
    return re.sub(r"_[0-9a-f]{16}_[0-9a-f]{12}$", "", name)


def reason(news: dict, changed: list) -> str:
    """The `before <reason>` of the backup's notes line, in the words backups.take allows
    (lowercase, digits, space and `.:_-`): the new template by its file name without the digests
    (`upgrade to docker.io_jellyfin_jellyfin_10.11.12`), else what forced the recreate."""
    if "template" in changed:
        text = f"upgrade to {template_stem(news.get('template') or '')}"
    elif "unprivileged" in changed:
        text = "unprivileged change"
    else:
        text = "recreate for " + " ".join(k for k in changed if k in RISKY)
    return re.sub(r"[^a-z0-9 .:_-]", "-", text.lower())[:80]


# ---------------------------------------------------------------- the sequence

def recreate(provider, news: dict, olds: dict, current: dict, vmid: int, changed: list) -> dict:
    """Backup, recreate, health gate; roll back on failure (see the module text)."""
    volid = backups.take(target_of(news), news, vmid, reason(news, changed))
    try:
        outs = provider._replace(news, olds, current, vmid, changed)
    except health.UnhealthyError as exc:  # the create's own gate (ProxmoxCTProvider._gate)
        return failed(provider, news, olds, vmid, volid, exc)
    return passed(news, vmid, outs, volid)


def passed(news: dict, vmid: int, outs: dict, volid: Optional[str]) -> dict:
    """The new version is healthy: this app's backups pruned to `keep_backups`, never the new one."""
    if volid:
        backups.prune(target_of(news), news, vmid)  # the newest (this one) is always kept
    return {**outs, "last_backup": volid}


def failed(provider, news: dict, olds: dict, vmid: int, volid: Optional[str], exc: Exception) -> dict:
    """Not healthy: roll back to `volid` (unless `rollback` is false), then fail with the evidence."""
    target = target_of(news)
    evidence = str(exc)
    what = f"the upgrade of {news['app']} (CT {vmid}) to {image_of(news)} did not become healthy"
    if not news.get("rollback", True):
        raise UpgradeFailed(f"{evidence}\n{what}; `rollback: false`: the new version is left in place"
                            + (f" (the backup taken before it: {volid})" if volid else ""))
    if not volid:
        raise UpgradeFailed(f"{evidence}\n{what}; there is no backup of CT {vmid} to roll back to: the new version "
                            "is left in place")
    log.info(target.name, news["app"], f"{what}; rolling back to {volid}")
    try:
        restore(provider, olds, vmid, volid)
    except HostCommandError as lost:
        raise UpgradeFailed(f"{evidence}\n{what}; the rollback to {volid} failed: {lost}\nthe backup is kept: the next "
                            "`pulumi up` restores it again, or restore it by hand (docs/proxmox.md)") from lost
    after = "the restored version is healthy"
    if olds.get("running", True):
        try:
            health.wait_healthy(target, olds, vmid, olds.get("ip"), time.time() + health.timeout_of(olds))
        except health.UnhealthyError as again:
            after = f"the restored version is not healthy either: {again}"
    raise UpgradeFailed(
        f"{evidence}\n{what}. Rolled back: restored {volid} (taken before the upgrade) at CT {vmid}, with its "
        f"address and MAC: {image_of(olds)} runs again with the data as it was before the upgrade; {after}. "
        "The state still holds the old version, so the next `pulumi up` tries the upgrade again: fix the image "
        "first (or set `rollback: false` to keep a broken version for debugging)")


def restore(provider, props: dict, vmid: int, volid: str) -> None:
    """`pct restore --force` of `volid` at `vmid`, then what the recreate path carries (pool,
    ACLs, firewall) put back, and the CT started when the app runs."""
    target = target_of(props)
    carry = provider._carry_read(props, vmid) if _status(props, vmid) != "absent" else None
    backups.restore(target, props, vmid, volid)  # stops it first, starts it after when the app runs
    if carry is not None:
        provider._carry_restore(props, vmid, carry)


def before_delete(props: dict, vmid: int) -> Optional[str]:
    """A backup of the CT with its volumes before a `deleteData` delete destroys them; kept (the
    prune runs only after an upgrade), so the data can come back by hand (docs/proxmox.md)."""
    return backups.take(target_of(props), props, vmid, "delete with deletedata")


# ---------------------------------------------------------------- an interrupted run

def _pending(olds: dict, news: dict) -> bool:
    return olds.get("template") != news.get("template")


def newest(news: dict, vmid: int, before: Optional[str] = None) -> Optional[str]:
    """The newest backup homefleet took of this app at `vmid` (taken `before` that reason)."""
    for item in backups.backups_of(target_of(news), news):  # newest first
        notes = vzdump.parse_notes(item.get("notes"))
        if notes and notes["vmid"] == vmid and (before is None or notes["reason"] == before):
            return item["volid"]
    return None


def _this_upgrade(news: dict, vmid: int) -> Optional[str]:
    return newest(news, vmid, reason(news, ["template"]))


def resume_restore(provider, olds: dict, news: dict, current: Optional[dict], vmid: int) -> None:
    """A rollback an earlier run left half-way, with an upgrade still pending: the CT is gone and no
    holder of this app holds its volumes (PVE's restore dropped the old volumes, then failed), or
    the CT is still locked `create` by a restore that never finished (its config intact, or bare:
    only the lock, when PVE had freed the old volumes before the cut). Restore the newest backup
    homefleet took of it again; the provider then applies the spec (and so tries the upgrade)."""
    if not _pending(olds, news):
        return
    if current is not None and not (current["config"].get("lock") == "create"
                                    and (pct.owner_of(current["config"]) == (news["stack"], news["app"])
                                         or _bare(current["config"]))):
        return
    if current is None and provider._find_holder(news, [])[0] is not None:
        return  # a recreate stopped half-way: the create takes the volumes back from the holder
    volid = newest(news, vmid)
    if volid is None:
        return
    target = target_of(news)
    log.info(target.name, news["app"], f"CT {vmid} was left half-way by an earlier run "
                                       f"({'gone' if current is None else 'locked by a restore'}); restoring {volid}")
    if current is not None:
        result = write(target, pct.unlock_argv(vmid))
        if not result.ok:
            raise HostCommandError(target.name, f"unlocking CT {vmid} to restore {volid}", result.stderr)
    restore(provider, olds, vmid, volid)


def _bare(config: dict) -> bool:
    """The config a restore cut after it freed the old volumes leaves (pve-container API2/LXC.pm
    create_vm: destroy_lxc_container(..., { lock => 'create' }), then the extraction): only the
    lock, no marker. At a vmid the state says is this app's, with this app's backup of it."""
    return {key for key, value in config.items() if value} <= {"lock", "digest"}  # `lxc: []` parsed always


def half_restored(config: dict) -> bool:
    """A CT a cut restore left as a bare `lock: create` config: still this app's for a refresh."""
    return config.get("lock") == "create" and _bare(config)


def resume_gate(provider, olds: dict, news: dict, current: dict, vmid: int) -> Optional[dict]:
    """The CT already runs the new image but the state has the old one: an earlier run stopped
    before or in the health gate (or `rollback: false` kept it). Apply the spec, gate it, and roll
    back to the backup taken for this upgrade. None when this is not the case."""
    if not _pending(olds, news) or template_of(current["config"]) != news.get("template"):
        return None
    log.info(target_of(news).name, news["app"], f"CT {vmid} already runs {image_of(news)} from an earlier run; "
                                                "checking its health")
    volid = _this_upgrade(news, vmid)
    try:
        outs = provider._apply(news, {**olds, "template": news.get("template")}, current, vmid)
    except health.UnhealthyError as exc:
        return failed(provider, news, olds, vmid, volid, exc)
    return passed(news, vmid, outs, volid)


def created_again(provider, olds: dict, news: dict, vmid: int) -> dict:
    """The CT was gone and is created again at its vmid (its volumes taken back from the holder of
    a recreate that stopped half-way): an upgrade still pending is gated as the recreate's would
    be, rolling back to the backup taken for it."""
    volid = _this_upgrade(news, vmid) if _pending(olds, news) else None
    try:
        outs = provider._create_at(news, vmid)
    except health.UnhealthyError as exc:
        if not _pending(olds, news):
            raise
        return failed(provider, news, olds, vmid, volid, exc)
    return passed(news, vmid, outs, volid) if _pending(olds, news) else outs


def _status(props: dict, vmid: int) -> str:
    result = run(target_of(props), pct.status_argv(vmid))
    if not result.ok:
        return "absent"
    return pct.parse_status(result.stdout)
