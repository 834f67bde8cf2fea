"""ProxmoxCT: one Proxmox container, from an OCI image (OciTemplate) or a classic template.

Identity: host + vmid. Inputs are a plain CT spec (see `pct.spec_options` for the keys).
create: one SSH exec — pct create, the env write, pct start, read back; rolled back on failure.
update: pct set; a restart only when PVE leaves changes pending or the env changed; a new
template, `unprivileged` or rootfs storage recreates the CT in place, carrying its data
volumes over through a holder CT (see docs/proxmox.md).
create and update end with the health gate when the CT runs (providers/health.py: output `healthy`,
or the `up` fails with the check's output and the CT's log).
read: pct config + pct status, in the inputs' shape, so `pulumi refresh` shows drift; a running
CT is probed once for `healthy`.
delete: only CTs carrying our marker; data volumes are parked in a holder unless
`delete_data` is set.

This module holds the entry points; the steps are mixins with one job each: ct_create (create,
take over, adopt), ct_update (the in-place update), ct_remove (destroy, replace), ct_data (data
volumes and holders); pure helpers in ct_outputs. Backups, health and upgrades: backups.py,
health.py, upgrade.py. The provider class stays here: it is pickled into the state by reference.
"""

import re
import time
from typing import Optional

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from . import diffdetail, health, hostcache, log, upgrade, upgrade_inputs
from .base import HomefleetProvider, diff_changes, inputs_moved, ints, same_host, target_of
from .ct_create import CtCreate
from .ct_data import VMID_ATTEMPTS, DataVolumes, adopt_problem, view_spec
from .ct_outputs import NOT_INPUTS, SECRET_OUTPUTS, UNKNOWN, has_unknown, inputs_of, log_drift, outputs_of
from .ct_remove import Removal
from .ct_update import InPlace
from .errors import HostCommandError, OwnershipError
from .hosts import ctview, pct

_VMID_RANGE = (100, 999999999)
_HOSTNAME = re.compile(r"^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$")
# ASCII only: the host's env writer (Perl `\w` on bytes) and PVE's `env` format take [A-Za-z0-9_];
# Python's `\w` would also pass `ÄPFEL`, which the host then refuses (a create/rollback loop).
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Control characters, and the line breaks str.splitlines() knows beyond \n (NEL, LS, PS, ...):
# nothing that could read as a new line of `pct config` output gets into a CT's env.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_IP = re.compile(r"^[0-9a-fA-F.:]{2,45}$")
_HOST_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?$")


class ProxmoxCTProvider(CtCreate, InPlace, Removal, DataVolumes, HomefleetProvider):
    # ---------- check ----------
    def check(self, olds: dict, news: dict) -> CheckResult:
        news = ints(news)
        failures = []
        oci = news.get("template_kind", "oci") == "oci"
        if oci and news.get("unprivileged") is False:
            failures.append(CheckFailure(
                "unprivileged",
                "PVE cannot create a privileged CT from an OCI image (`unable to create CT - Invalid argument`); "
                "remove `unprivileged: false`",
            ))
        vmid = news.get("vmid")
        if vmid not in (None, UNKNOWN) and not (_VMID_RANGE[0] <= int(vmid) <= _VMID_RANGE[1]):
            failures.append(CheckFailure("vmid", f"must be between {_VMID_RANGE[0]} and {_VMID_RANGE[1]}"))
        hostname = news.get("hostname")
        if hostname not in (None, UNKNOWN) and not _HOSTNAME.match(hostname):
            failures.append(CheckFailure("hostname", "must be a DNS label: letters, digits and '-', at most 63"))
        init = news.get("init_user")
        if isinstance(init, dict) and init.get("error"):  # compose `user:` naming a user the image lacks
            failures.append(CheckFailure("init_user", init["error"]))
        for field in ("env", "secret_env"):
            for key, value in (news.get(field) or {}).items():
                if not _ENV_KEY.match(key):
                    failures.append(CheckFailure(field, f"env key {key!r} must be ASCII letters, digits and '_', "
                                                        "not starting with a digit (PVE's env format)"))
                elif value != UNKNOWN and _CONTROL.search(str(value)):
                    failures.append(CheckFailure(field, f"env {key}: a value cannot hold control characters or "
                                                        "line separators (U+0085, U+2028, U+2029)"))
                elif value != UNKNOWN and str(value) != str(value).rstrip(" \t"):
                    failures.append(CheckFailure(field, f"env {key}: the value ends in whitespace, which PVE drops "
                                                        "when it reads the CT config; remove it"))
        description = news.get("description")
        if isinstance(description, str) and description != UNKNOWN and any(
                line.startswith(pct.MARKER_PREFIX) for line in description.split("\n")):
            failures.append(CheckFailure("description", f"a line may not begin with {pct.MARKER_PREFIX!r}: "
                                                        "that is homefleet's ownership marker; reword that line"))
        failures += [CheckFailure(key, text) for key, text in upgrade_inputs.problems(news)]
        if news.get("adopt") and not olds:
            failures += self._check_adopt(news)
        if olds and news.get("rootfs_size") not in (None, UNKNOWN) and olds.get("rootfs_size") is not None \
                and float(news["rootfs_size"]) < float(olds["rootfs_size"]):
            failures.append(CheckFailure("rootfs_size", f"PVE cannot shrink a disk (unable to shrink disk size); "
                                                        f"keep disk at {olds['rootfs_size']} GiB or more"))
        old_sizes = {v.get("path"): v.get("size") for v in (olds or {}).get("volumes") or []}
        for vol in news.get("volumes") or []:
            before = old_sizes.get(vol.get("path"))
            if before is not None and vol.get("size") not in (None, UNKNOWN) and float(vol["size"]) < float(before):
                failures.append(CheckFailure("volumes", f"the volume at {vol['path']} is {before} GiB; "
                                                        "PVE cannot shrink a disk (unable to shrink disk size)"))
        for mount in news.get("mounts") or []:
            if not str(mount.get("source", "")).startswith("/") or not str(mount.get("path", "")).startswith("/"):
                failures.append(CheckFailure("mounts", "a bind mount needs an absolute host path and container path"))
        for entry in news.get("hosts") or []:
            if entry == UNKNOWN or has_unknown(entry):
                continue
            if not isinstance(entry, list) or len(entry) < 2 or not _IP.match(str(entry[0])) \
                    or not all(_HOST_NAME.match(str(name)) for name in entry[1:]):
                failures.append(CheckFailure("hosts", "each /etc/hosts entry is [address, name, ...] with plain names"))
        return CheckResult(news, failures)

    def _check_adopt(self, news: dict) -> list:
        """At preview time: adopting a CT whose settings would force a recreate is refused
        before anything runs (create checks again). An unreachable host is left to create."""
        if has_unknown({k: v for k, v in news.items() if k != "__provider"}) or not news.get("vmid"):
            return []
        try:
            current = self._read_current(news, int(news["vmid"]))
        except Exception:  # noqa: BLE001 - the host may be unreachable at preview; create decides
            return []
        if current is None:
            return [CheckFailure("adopt", f"CT {news['vmid']} does not exist on {target_of(news).name}; remove `adopt`")]
        problem = adopt_problem(news, current)
        return [CheckFailure("adopt", f"refusing to adopt CT {news['vmid']}: {problem}")] if problem else []

    # ---------- diff ----------
    def diff(self, _id: str, olds: dict, news: dict) -> DiffResult:
        olds, news = ints(olds), ints(news)
        kept = olds.get("kept_on_holder")
        if isinstance(kept, dict) and kept.get("vmid"):
            # Said at every preview until the paths come back or the holder is removed by hand.
            log.info(target_of(olds).name, olds.get("app", "?"),
                     f"holder CT {kept['vmid']} still holds data volumes for {', '.join(kept.get('paths') or [])}, "
                     "which the app no longer names: add the paths back to take them, or remove the holder by hand")
        replaces = []
        upgrade_inputs.say_plan(olds, news)
        if not same_host(olds.get("host", {}), news.get("host", {})):
            replaces.append("host")
        if news.get("vmid") not in (None, UNKNOWN) and int(news["vmid"]) != int(olds.get("vmid", 0)):
            replaces.append("vmid")
        if has_unknown({k: v for k, v in news.items() if k != "__provider"}):
            return DiffResult(changes=None if not replaces else True, replaces=replaces,
                              delete_before_replace=bool(news.get("vmid")))
        changed = self.changed(olds, news)
        moved = inputs_moved(olds, news, NOT_INPUTS)
        if changed and not moved and not replaces:  # drift: mark what the host has that differs
            diffdetail.offer(sorted({i for key in changed for i in inputs_of(key)} & set(news)))
        return DiffResult(
            changes=diff_changes(changed, replaces, moved),
            replaces=replaces,
            delete_before_replace=bool(news.get("vmid")),
        )

    @staticmethod
    def changed(olds: dict, news: dict) -> list:
        desired = ctview.from_spec(view_spec(news), olds.get("image_env") or {})
        changed = ctview.changed_keys(olds.get("observed") or {}, desired)
        if olds.get("template") != news.get("template"):
            changed.append("template")
        if (olds.get("secret_env") or {}) != (news.get("secret_env") or {}):
            changed.append("secret_env")
        for key in ("ports", "delete_data", "host", "hosts", "files", "init_user", "health"):
            if olds.get(key) != news.get(key):
                changed.append(key)
        # The upgrade settings change nothing on the CT: a real change is recorded by an update
        # that runs nothing on the host; a state from before they existed means their defaults.
        changed += upgrade_inputs.changed(olds, news)
        return sorted(set(changed))

    # ---------- create ----------
    def create(self, props: dict) -> CreateResult:
        props = ints(props)
        target = target_of(props)
        if props.get("adopt"):
            return self._adopt(props)
        fixed = props.get("vmid")
        tried = set()
        for _attempt in range(VMID_ATTEMPTS):
            vmid = int(fixed) if fixed else self._allocate(props, tried)
            try:
                outs = self._create_at(props, vmid)
                return CreateResult(f"{target.name}/{outs['vmid']}", outs)
            except HostCommandError as exc:
                if fixed or "already exists" not in exc.stderr:
                    raise
                tried.add(vmid)
                log.info(target.name, props["app"], f"vmid {vmid} was taken meanwhile; trying another")
        raise HostCommandError(target.name, f"allocating a vmid for {props['app']}", "every vmid tried was taken")

    def _gate(self, props: dict, vmid: int, readback: dict) -> bool:
        """The health gate after a create or an update that leaves the CT running (providers/health.py):
        True, or UnhealthyError with the evidence. A CT that is not meant to run is not healthy."""
        if readback["status"] != "running":
            return False
        health.wait_healthy(target_of(props), props, vmid, readback["ip"], time.time() + health.timeout_of(props))
        return True

    # ---------- read ----------
    def _read_current(self, props: dict, vmid: int) -> Optional[dict]:
        return hostcache.read_one(target_of(props), vmid)

    def read(self, id_: str, props: dict) -> ReadResult:
        props = ints(props)
        vmid = int(props["vmid"])
        current = hostcache.ct(target_of(props), vmid)  # one read per host for a whole refresh
        if current is not None and upgrade.half_restored(current["config"]):
            log.info(target_of(props).name, props["app"], f"CT {vmid} was left half-restored (lock: create) by an "
                     "earlier run: kept in the state; the next `pulumi up` restores it")
            return ReadResult(id_, {**props, "healthy": False})
        if current is None or pct.owner_of(current["config"]) != (props["stack"], props["app"]):
            log.info(target_of(props).name, props["app"], f"CT {vmid} is gone (or no longer ours): dropped from the state")
            return ReadResult("", {})
        healthy = current["status"] == "running" and health.probe(target_of(props), props, vmid, current["ip"])
        outs = outputs_of(props, vmid, current, props.get("image_env") or {}, props.get("kept_on_holder"), healthy)
        log_drift(props, props.get("observed") or {}, outs["observed"])
        if props.get("healthy") and not healthy:
            log.info(target_of(props).name, props["app"], f"CT {vmid} is not healthy ({current['status']})")
        return ReadResult(id_, outs)

    # ---------- update ----------
    def update(self, id_: str, olds: dict, news: dict) -> UpdateResult:
        olds, news = ints(olds), ints(news)
        vmid = int(olds["vmid"])
        current = self._read_current(olds, vmid)
        if current is None or current["config"].get("lock"):
            # left half-way by an earlier run: a restore that never finished (providers/upgrade.py)
            upgrade.resume_restore(self, olds, news, current, vmid)
            current = self._read_current(olds, vmid)
        if current is None:
            # Gone: an upgrade that failed half-way (its data waits on a holder) or a manual
            # `pct destroy`. Create it again at its vmid; the create takes the holder's volumes.
            log.info(target_of(olds).name, news["app"], f"CT {vmid} is gone; creating it again")
            return UpdateResult(upgrade.created_again(self, olds, news, vmid))
        current = self._owned_current(olds, vmid, "update", current)
        # an upgrade stopped before or in its health gate is finished by providers/upgrade.py
        outs = upgrade.resume_gate(self, olds, news, current, vmid)
        if outs is None:
            outs = self._apply(news, olds, current, vmid)
        return UpdateResult({"last_backup": olds.get("last_backup"), **outs})

    def _owned_current(self, props: dict, vmid: int, action: str, current: Optional[dict] = None) -> dict:
        target = target_of(props)
        current = current or self._read_current(props, vmid)
        if current is None:
            raise HostCommandError(target.name, f"{action} of CT {vmid}", f"CT {vmid} no longer exists; run `pulumi refresh`")
        owner = pct.owner_of(current["config"])
        if owner != (props["stack"], props["app"]):
            raise OwnershipError(
                f"host {target.name}: refusing to {action} CT {vmid}: "
                + ("it carries no homefleet marker (tag 'homefleet' and the 'managed-by: homefleet' description line); "
                   "homefleet never changes what it did not create. Set `adopt: true` on the app to take it over"
                   if owner is None else f"it belongs to stack {owner[0]} app {owner[1]}")
            )
        return current

    def _recreate(self, news: dict, olds: dict, current: dict, vmid: int, changed: list) -> dict:
        """Backup, recreate, health gate, rollback: providers/upgrade.py."""
        return upgrade.recreate(self, news, olds, current, vmid, changed)

    # ---------- delete ----------
    def delete(self, _id: str, props: dict) -> None:
        props = ints(props)
        target = target_of(props)
        vmid = int(props["vmid"])
        current = self._read_current(props, vmid)
        if current is None:
            return
        owner = pct.owner_of(current["config"])
        if owner != (props["stack"], props["app"]):
            raise OwnershipError(
                f"host {target.name}: refusing to delete CT {vmid}: "
                + ("it carries no homefleet marker; homefleet never destroys what it did not create"
                   if owner is None else f"it now belongs to stack {owner[0]} app {owner[1]}")
            )
        held = pct.held_volumes(current["config"])
        running = current["status"] == "running"
        if held and not props.get("delete_data"):
            self._park(props, vmid, current, held)
            return
        if held:
            upgrade.before_delete(props, vmid)  # deleteData destroys the volumes: a backup first
        log.info(target.name, props["app"], f"destroying CT {vmid}")
        self._destroy(props, vmid, running)


class ProxmoxCT(Resource, module="homefleet", name="ProxmoxCT"):
    vmid: pulumi.Output[int]
    ip: pulumi.Output[str]
    urls: pulumi.Output[list]
    status: pulumi.Output[str]
    healthy: pulumi.Output[bool]

    def __init__(self, name: str, props: dict, opts: Optional[pulumi.ResourceOptions] = None):
        outputs = {"image_env": None, "observed": None, "raw_mounts": None, "hwaddrs": None,
                   "ip": None, "status": None, "urls": None, "kept_on_holder": None, "healthy": None,
                   "last_backup": None}
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS))
        super().__init__(ProxmoxCTProvider(), name, {"vmid": None, **outputs, **props}, opts)
