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

Interrupted runs are found again by `resume`, from what the host holds (the CT's template line,
its `lock`, this app's holder and backups), before the provider applies the spec again.
"""

from typing import Optional

from . import backups, health, log
from .base import target_of
from .ct_data import write
from .errors import HostCommandError
from .hosts import pct
from .transport import run

RISKY = ("template", "unprivileged", "rootfs", "volumes")


class UpgradeFailed(Exception):
    """The new version did not become healthy; says what was seen and what was restored."""


def image_of(props: dict) -> str:
    return props.get("image") or props.get("template") or "?"


def reason(news: dict, olds: dict, changed: list) -> str:
    """The `before <reason>` of the backup's notes line: one line, no template braces."""
    if "template" in changed:
        text = f"upgrade to {image_of(news)}"
    elif "unprivileged" in changed:
        text = "unprivileged change"
    else:
        text = "recreate (" + ", ".join(k for k in changed if k in RISKY) + ")"
    return text.replace("{", "(").replace("}", ")").replace("\n", " ")


# ---------------------------------------------------------------- the sequence

def recreate(provider, news: dict, olds: dict, current: dict, vmid: int, changed: list) -> dict:
    """Backup, recreate, health gate; roll back on failure (see the module text)."""
    volid = backups.take(news, vmid, reason(news, olds, changed))
    outs = provider._replace(news, olds, current, vmid, changed)
    return gate(provider, news, olds, vmid, outs, volid)


def gate(provider, news: dict, olds: dict, vmid: int, outs: dict, volid: Optional[str]) -> dict:
    target = target_of(news)
    if not news.get("running", True):
        return {**outs, "healthy": None, "last_backup": volid}  # a CT meant to be stopped has no health to wait for
    verdict = health.wait_healthy(news, vmid, outs.get("ip"))
    if verdict.healthy:
        outs = {**outs, "healthy": True, "last_backup": volid}
        if volid:
            backups.prune(news, vmid, int(news.get("keep_backups") or 3), keep=[volid])
        return outs
    evidence = verdict.evidence
    what = f"{news['app']} on CT {vmid} did not become healthy within {news.get('health_timeout', 300)} s " \
           f"after the upgrade to {image_of(news)}"
    if not news.get("rollback", True):
        raise UpgradeFailed(f"host {target.name}: {what}:\n{evidence}\n`rollback: false`: the new version is left in "
                            f"place" + (f"; the backup taken before it is {volid}" if volid else ""))
    if not volid:
        raise UpgradeFailed(f"host {target.name}: {what}:\n{evidence}\nno backup of CT {vmid} to roll back to: "
                            "the new version is left in place")
    log.info(target.name, news["app"], f"{what}; rolling back to {volid}")
    restore(provider, olds, vmid, volid)
    back = health.wait_healthy(olds, vmid, olds.get("ip"))
    after = ("the restored version is healthy" if back.healthy
             else f"the restored version is not healthy either:\n{back.evidence}")
    raise UpgradeFailed(
        f"host {target.name}: {what}:\n{evidence}\n"
        f"rolled back: restored {volid} (taken before the upgrade) at CT {vmid} with its address and MAC: "
        f"{image_of(olds)} runs again with the data as it was before the upgrade; {after}. "
        "The state still holds the old version, so the next `pulumi up` tries the upgrade again: fix the image "
        "(or set `rollback: false` to keep a broken version for debugging) first")


def restore(provider, props: dict, vmid: int, volid: str) -> None:
    """`pct restore --force` of `volid` at `vmid`, then what the recreate path carries (pool,
    ACLs, firewall) put back, and the CT started when the app runs."""
    target = target_of(props)
    carry = provider._carry_read(props, vmid) if _exists(props, vmid) else None
    backups.restore(props, vmid, volid)
    if carry is not None:
        provider._carry_restore(props, vmid, carry)
    if props.get("running", True) and _status(props, vmid) != "running":
        result = write(target, pct.start_argv(vmid))
        if not result.ok:
            raise HostCommandError(target.name, f"starting CT {vmid} restored from {volid}", result.stderr)


def before_delete(props: dict, vmid: int) -> Optional[str]:
    """A backup of the CT with its volumes before a `deleteData` delete destroys them; kept (the
    prune runs only after an upgrade), so the data can come back by hand (docs/proxmox.md)."""
    return backups.take(props, vmid, "delete with deleteData")


# ---------------------------------------------------------------- an interrupted run

def resume(provider, olds: dict, news: dict, current: Optional[dict], vmid: int) -> Optional[dict]:
    """An upgrade or rollback that an earlier run left half-way (connection lost, provider
    killed): -> the outputs when this finished it, else None (the provider goes on as usual).

    * the CT is gone and no holder of this app holds its volumes (a restore failed after PVE
      dropped the old volumes), or the CT is locked by a restore that never finished: restore
      the newest backup homefleet took of it again; the provider then applies the spec.
    * the CT already runs the new image but the state has the old one (stopped before or during
      the health gate): run the gate now, rolling back to the backup taken for this upgrade."""
    pending = olds.get("template") != news.get("template")
    if not pending:
        return None
    target = target_of(news)
    if current is None or (current["config"].get("lock") == "create" and pct.owner_of(current["config"])
                           == (news["stack"], news["app"])):
        if current is None:
            found, _conf, _refused = provider._find_holder(news, [])
            if found is not None:
                return None  # the recreate's own path takes the volumes back from the holder
        volid = backups.newest(news, vmid)
        if volid is None:
            return None
        log.info(target.name, news["app"], f"CT {vmid} was left half-way by an earlier run "
                                           f"({'gone' if current is None else 'locked by a restore'}); restoring {volid}")
        if current is not None:
            result = write(target, ["pct", "unlock", str(vmid)])
            if not result.ok:
                raise HostCommandError(target.name, f"unlocking CT {vmid} to restore {volid}", result.stderr)
        restore(provider, olds, vmid, volid)
        return None
    from .proxmox_ct import _template_of  # the template line homefleet writes; no import circle at load
    if _template_of(current["config"]) == news.get("template"):
        volid = backups.newest(news, vmid, reason=f"upgrade to {image_of(news)}")
        log.info(target.name, news["app"], f"CT {vmid} already runs {image_of(news)} from an earlier run; "
                                           "checking its health now")
        outs = provider._apply(news, {**olds, "template": news.get("template")}, current, vmid)
        return gate(provider, news, olds, vmid, outs, volid)
    return None


def created_again(provider, olds: dict, news: dict, vmid: int, outs: dict) -> dict:
    """The CT was gone and is created again at its vmid (its volumes taken back from the holder of
    a recreate that stopped half-way): an upgrade still pending is health-gated as the recreate
    would have been, rolling back to the backup taken for it."""
    if olds.get("template") == news.get("template"):
        return outs
    return gate(provider, news, olds, vmid, outs, backups.newest(news, vmid, reason=f"upgrade to {image_of(news)}"))


def _exists(props: dict, vmid: int) -> bool:
    return _status(props, vmid) != "absent"


def _status(props: dict, vmid: int) -> str:
    result = run(target_of(props), pct.status_argv(vmid))
    if not result.ok:
        return "absent"
    return pct.parse_status(result.stdout)
