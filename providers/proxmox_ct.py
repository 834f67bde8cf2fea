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
"""

import re
import secrets
import threading
import time
from typing import Optional

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from . import diffdetail, health, hostcache, log, upgrade, upgrade_inputs
from .base import HomefleetProvider, diff_changes, inputs_moved, ints, same_host, target_of
from .errors import HostCommandError, OwnershipError
from .ct_data import (CREATE_TIMEOUT, VMID_ATTEMPTS, DataVolumes, adopt_problem, key_order, paths_text, takeback_plan,
                      view_spec, volume_path_changes)
from .ct_data import write as _write
from .hosts import ctenv, ctfiles, ctinit, ctops, ctview, pct, preflight, script
from .transport import put, run

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
RECREATE_KEYS = ("template", "rootfs", "unprivileged")
SETTABLE = ("hostname", "cores", "memory", "swap", "onboot", "tags", "description", "startup",
            "timezone", "nameserver", "searchdomain", "features", "entrypoint")
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
_claimed_lock = threading.Lock()
_claimed: dict = {}


def _has_unknown(value) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


_NOT_INPUTS = {"__provider", "vmid", "image_env", "observed", "raw_mounts", "hwaddrs", "ip", "status", "urls",
               "kept_on_holder", "healthy", "last_backup"}
# Outputs that can hold env values: the image's env is a secret output; `observed` shows only the
# stack's own and the image's values (see _hide_secrets), so it stays readable for drift reports.
SECRET_OUTPUTS = ["image_env"]


def _merged_env(spec: dict, image_env: dict) -> dict:
    return {**image_env, **(spec.get("env") or {}), **(spec.get("secret_env") or {})}


def _hide_secrets(view: dict, spec: dict, image_env: Optional[dict] = None) -> dict:
    """The observed env as the state may hold it in plain text: a value is shown only when it is
    the stack's own (a plain input) or the image's (its public config); secret env values read
    `[secret]`, and anything else on the CT (set by hand, left by an older run) reads
    `[not from the stack or the image]` — still a difference from the spec, so drift is seen."""
    if not view.get("env"):
        return view
    secret_keys = set(spec.get("secret_env") or {})
    mine, image = spec.get("env") or {}, image_env or {}
    lines = []
    for line in view["env"].split("\n"):
        key, _, value = line.partition("=")
        if key in secret_keys:
            lines.append(f"{key}=[secret]")
        elif mine.get(key) == value or image.get(key) == value:
            lines.append(line)
        else:
            lines.append(f"{key}=[not from the stack or the image]")
    return {**view, "env": "\n".join(lines)}


def _urls(spec: dict, ip: Optional[str]) -> list:
    if not ip:
        return []
    urls = []
    for port in spec.get("ports") or []:
        scheme = port.get("scheme")
        if scheme:
            urls.append(f"{scheme}://{ip}:{port['port']}")
    return urls


def _outputs(spec: dict, vmid: int, readback: dict, image_env: dict, kept: Optional[dict] = None,
             healthy: Optional[bool] = None) -> dict:
    observed = _hide_secrets(ctview.from_config(readback["config"], readback["status"], spec), spec, image_env)
    return {
        **spec,
        "kept_on_holder": kept,
        "vmid": vmid,
        "image_env": image_env,
        "observed": observed,
        "raw_mounts": {k: v for k, v in readback["config"].items() if re.fullmatch(r"mp\d+", k)},
        "hwaddrs": {k: _hwaddr(v) for k, v in readback["config"].items() if re.fullmatch(r"net\d+", k)},
        "ip": readback["ip"],
        "status": readback["status"],
        "urls": _urls(spec, readback["ip"]),
        "healthy": bool(healthy) and readback["status"] == "running",
    }


def _log_drift(props: dict, before: dict, after: dict) -> None:
    """Python dynamic providers cannot show a refresh's detailed diff, so say it in the log."""
    changes = []
    for key in ctview.changed_keys(before, after):
        if key in ("env", "description"):
            changes.append(f"{key} changed")
        else:
            changes.append(f"{key}: {before.get(key, '(absent)')} -> {after.get(key, '(absent)')}")
    if changes:
        log.info(target_of(props).name, props["app"], f"drift on CT {props['vmid']}: " + "; ".join(changes))


def _resizes(observed: dict, desired: dict, changed: list) -> list:
    """(disk, GiB) for the rootfs and volumes that only grew: `pct resize`, no restart."""
    resizes = []
    if "disk" in changed:
        before, after = float(observed["disk"].rstrip("G")), float(desired["disk"].rstrip("G"))
        if after < before:
            raise ValueError(f"the rootfs is {observed['disk']}; PVE cannot shrink a disk (unable to shrink disk size)")
        resizes.append(("rootfs", desired["disk"].rstrip("G").removesuffix(".0")))
    for key in changed:
        if re.fullmatch(r"mp\d+", key):
            grown = ctview.grown_volume(observed.get(key), desired.get(key))
            if grown:
                resizes.append((key, grown))
    return resizes


def _template_of(config: dict) -> Optional[str]:
    """The template a CT was made from, from the `template:` line homefleet writes in its description."""
    prefix = pct.template_line("")
    for line in config.get("description", "").split("\n"):
        if line.startswith(prefix):
            return line[len(prefix):]
    return None


def _hwaddr(net_value: str) -> Optional[str]:
    match = re.search(r"hwaddr=([0-9A-Fa-f:]+)", net_value)
    return match.group(1) if match else None


_DRIFT_INPUTS = {"status": ("running",), "rootfs": ("rootfs_storage",), "disk": ("rootfs_size",)}


def _inputs_of(key: str) -> tuple:
    """The inputs a drifted key of the CT (ctview's names) is put back from."""
    for pattern, inputs in ((r"net\d+", ("nets",)), (r"dev\d+", ("devices",)), (r"mp\d+", ("mounts", "volumes"))):
        if re.fullmatch(pattern, key):
            return inputs
    return _DRIFT_INPUTS.get(key, (key,))


# Input names -> the names a user writes in the stack file (as homefleet/preview_summary.py FIELD_NAMES).
_STACK_NAMES = {"rootfs_storage": "storage", "rootfs_size": "disk", "nets": "networks", "delete_data": "deleteData",
                "secret_env": "secrets", "ssh_public_keys": "sshPublicKeys"}


def _stack_names(changed: list, news: dict) -> str:
    """'memory, mounts' for changed CT keys (`mp0`, `net0`, `rootfs`): the stack file's words, no reprs."""
    names = set()
    for key in changed:
        inputs = [i for i in _inputs_of(key) if news.get(i)] or list(_inputs_of(key))[:1]
        names.update(_STACK_NAMES.get(i, i) for i in inputs)
    return ", ".join(sorted(names))


def _host_path_mount(key: str, value: str) -> bool:
    """An mpN whose source is a host path (a bind mount, or a block device)."""
    return bool(re.fullmatch(r"mp\d+", key)) and value.split(",", 1)[0].startswith("/")


class ProxmoxCTProvider(DataVolumes, HomefleetProvider):
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
            if entry == UNKNOWN or _has_unknown(entry):
                continue
            if not isinstance(entry, list) or len(entry) < 2 or not _IP.match(str(entry[0])) \
                    or not all(_HOST_NAME.match(str(name)) for name in entry[1:]):
                failures.append(CheckFailure("hosts", "each /etc/hosts entry is [address, name, ...] with plain names"))
        return CheckResult(news, failures)

    def _check_adopt(self, news: dict) -> list:
        """At preview time: adopting a CT whose settings would force a recreate is refused
        before anything runs (create checks again). An unreachable host is left to create."""
        if _has_unknown({k: v for k, v in news.items() if k != "__provider"}) or not news.get("vmid"):
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
        if _has_unknown({k: v for k, v in news.items() if k != "__provider"}):
            return DiffResult(changes=None if not replaces else True, replaces=replaces,
                              delete_before_replace=bool(news.get("vmid")))
        changed = self.changed(olds, news)
        moved = inputs_moved(olds, news, _NOT_INPUTS)
        if changed and not moved and not replaces:  # drift: mark what the host has that differs
            diffdetail.offer(sorted({i for key in changed for i in _inputs_of(key)} & set(news)))
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
        for key in ("ports", "delete_data", "host", "hosts", "files", "init_user"):
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

    def _allocate(self, props: dict, tried: set) -> int:
        """The host's next free vmid, skipping ids this process handed out already.

        `pvesh get /cluster/nextid` reserves nothing, so concurrent creates in this process
        would get the same id; other processes are handled by retrying on "already exists".
        """
        target = target_of(props)
        result = run(target, pct.nextid_argv())
        if not result.ok:
            raise HostCommandError(target.name, "pvesh get /cluster/nextid", result.stderr)
        vmid = int(result.stdout.strip())
        with _claimed_lock:
            claimed = _claimed.setdefault(target.name, set())
            while vmid in tried or vmid in claimed:
                vmid += 1
            claimed.add(vmid)
        return vmid

    def _create_at(self, props: dict, vmid: int, holder: Optional[int] = None, holder_conf: Optional[dict] = None,
                   ignore: Optional[list] = None) -> dict:
        target = target_of(props)
        oci = props.get("template_kind", "oci") == "oci"
        options = pct.spec_options(props)
        moves, left = takeback_plan(props, holder_conf) if holder is not None else ([], {})
        for _source, key in moves:
            del options[key]
        # Bind and device mount points go in after the create, before the start: PVE mounts
        # every mount point read-write while it extracts the image (create_vm -> mount_all),
        # so it would chown the host directory and write the image's files into it.
        post = {key: options.pop(key) for key in list(options) if _host_path_mount(key, options[key])}
        if props.get("entrypoint"):
            post["entrypoint"] = props["entrypoint"]
        env = {**(props.get("env") or {}), **(props.get("secret_env") or {})}
        keys_file = None
        if props.get("ssh_public_keys") and not oci:
            keys_file = f".homefleet-keys-{secrets.token_hex(8)}"
            put(target, props["ssh_public_keys"].encode() + b"\n", keys_file, 0o600)
            options["ssh-public-keys"] = keys_file
        init_user = props.get("init_user")  # compose `user:`: written while the new CT is still stopped
        argv = ctops.create_script(
            vmid, props["template"], options, oci=oci, has_env=bool(env),
            start=props.get("running", True) and not init_user,
            post_options=post or None, reclaim=None if holder is not None else (props["stack"], props["app"]),
            moves=moves, holder=holder, cleanup=keys_file, checks=preflight.ct_checks(props),
            keep_options=pct.with_keepattrs(options, props) if oci else None,
            keep_holder=bool(left), ignore_holders=ignore,
        )
        log.info(target.name, props["app"], f"creating CT {vmid} from {props['template']}")
        result = _write(target, argv, stdin=ctenv.stdin_data(env), timeout=CREATE_TIMEOUT)
        if not result.ok:
            raise HostCommandError(target.name, f"creating CT {vmid} for {props['app']}", result.stderr)
        readback = ctops.parse_readback(result.stdout)
        if readback.get("existing") is not None:
            return self._take_over(props, readback["existing"])
        if readback.get("holders") and holder is None:
            found, conf, refused = self._find_holder(props, readback["holders"])
            if found is None:
                return self._create_at(props, vmid, ignore=(ignore or []) + refused)
            moves, left = takeback_plan(props, conf)
            if not moves:
                log.info(target.name, props["app"], f"holder CT {found} keeps volumes for {paths_text(left)}: "
                                                    "this spec names none of them")
                return self._create_at(props, vmid, ignore=(ignore or []) + refused + [found])
            held = pct.held_volumes(conf)
            log.info(target.name, props["app"], f"taking the data volumes for {paths_text({k: held[k] for k, _ in moves})} "
                                                f"back from holder CT {found}")
            return self._create_at(props, vmid, holder=found, holder_conf=conf)
        image_env = pct.env_dict(readback["image_env"]) if oci else {}
        kept = None
        if left:
            kept = {"vmid": holder, "paths": sorted(p or k for k, p in left.items())}
            log.info(target.name, props["app"], f"holder CT {holder} is kept: it still holds volumes for "
                                                f"{paths_text(left)}, which this spec does not name")
        if init_user:
            readback = {**readback, **self._set_init_user(props, vmid, False, props.get("running", True))}
        self._write_hosts(props, vmid, readback["status"])
        self._push_files(props, vmid, readback["status"], props.get("files") or [])
        return _outputs(props, vmid, readback, image_env, kept, self._gate(props, vmid, readback))

    def _gate(self, props: dict, vmid: int, readback: dict) -> bool:
        """The health gate after a create or an update that leaves the CT running (providers/health.py):
        True, or UnhealthyError with the evidence. A CT that is not meant to run is not healthy."""
        if readback["status"] != "running":
            return False
        health.wait_healthy(target_of(props), props, vmid, readback["ip"], time.time() + health.timeout_of(props))
        return True

    def _take_over(self, props: dict, vmid: int) -> dict:
        """A CT with this app's marker that no state records: an earlier run created it and was
        killed (or lost its connection) before it could say so. Bring it to the spec."""
        target = target_of(props)
        current = self._read_current(props, vmid)
        if current is None or pct.owner_of(current["config"]) != (props["stack"], props["app"]):
            raise HostCommandError(target.name, f"taking over CT {vmid} for {props['app']}",
                                   f"CT {vmid} changed while it was read; run `pulumi up` again")
        log.info(target.name, props["app"], f"CT {vmid} carries this app's marker from an interrupted run; taking it over")
        olds = _outputs(props, vmid, current, self._image_env(props, _template_of(current["config"]) or props["template"]))
        olds["template"] = _template_of(current["config"]) or props["template"]
        return self._apply(props, olds, current, vmid)

    def _adopt(self, props: dict) -> CreateResult:
        target = target_of(props)
        vmid = int(props["vmid"])
        current = self._read_current(props, vmid)
        if current is None:
            raise HostCommandError(target.name, f"adopting CT {vmid}", f"CT {vmid} does not exist; remove `adopt`")
        problem = adopt_problem(props, current)
        if problem:
            raise OwnershipError(f"host {target.name}: refusing to adopt CT {vmid}: {problem}")
        log.info(target.name, props["app"], f"adopting existing CT {vmid}")
        olds = _outputs(props, vmid, current, self._image_env(props, props["template"]))
        olds["template"] = props["template"]
        outs = self._apply(props, olds, current, vmid)
        return CreateResult(f"{target.name}/{vmid}", outs)

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
        outs = _outputs(props, vmid, current, props.get("image_env") or {}, props.get("kept_on_holder"), healthy)
        _log_drift(props, props.get("observed") or {}, outs["observed"])
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

    def _apply(self, news: dict, olds: dict, current: dict, vmid: int) -> dict:
        target = target_of(news)
        image_env = olds.get("image_env") or {}
        observed = _hide_secrets(ctview.from_config(current["config"], current["status"], news), news, image_env)
        desired = ctview.from_spec(view_spec(news), image_env)
        changed = ctview.changed_keys(observed, desired)
        # The template the CT was made from says it best: an upgrade that stopped after the new
        # CT was made must not recreate it again.
        if (_template_of(current["config"]) or olds.get("template")) != news.get("template"):
            changed.append("template")
        moved = volume_path_changes(current["config"], news)
        if moved:
            # A slot's volume would get another path: its data would show at the wrong place.
            # Recreating matches every volume by path through the holder.
            changed.append("volumes")
        if any(key in changed for key in RECREATE_KEYS) or moved:
            return self._recreate(news, olds, current, vmid, changed)
        resizes = _resizes(observed, desired, changed)
        grown = {disk for disk, _ in resizes}
        options, delete = self._set_options(news, olds, current, [k for k in changed if k not in grown])
        env = None
        if "env" in changed or (olds.get("secret_env") or {}) != (news.get("secret_env") or {}):
            env = _merged_env(news, image_env)
        was_running = current["status"] == "running"
        want_running = news.get("running", True)
        # hostname is config-only (pve-container Config.pm $LXC_FASTPLUG_OPTIONS): never pending,
        # and a running CT keeps its UTS name until its next start
        restart = was_running and want_running and "hostname" in options
        checks = preflight.ct_checks(news, keys=options)
        keep = pct.with_keepattrs(options, news) if news.get("template_kind", "oci") == "oci" else None
        argv = ctops.update_script(vmid, options, delete, env, was_running, want_running, resizes, keep_options=keep,
                                   restart=restart, checks=checks)
        log.info(target.name, news["app"], f"updating CT {vmid}: {_stack_names(changed, news) or 'outputs only'}")
        result = _write(target, argv, stdin=ctenv.stdin_data(env or {}), timeout=CREATE_TIMEOUT)
        if not result.ok:
            raise HostCommandError(target.name, f"updating CT {vmid} ({news['app']})", result.stderr)
        readback = ctops.parse_readback(result.stdout)
        if readback["restarted"]:
            why = "its new hostname takes effect at a start" if restart else "PVE left changes pending until the next start"
            log.info(target.name, news["app"], f"restarted CT {vmid}: {why}")
        if news.get("init_user") and news.get("init_user") != olds.get("init_user"):
            readback = {**readback, **self._set_init_user(news, vmid, readback["status"] == "running",
                                                           news.get("running", True))}
        if news.get("hosts") != olds.get("hosts") or not was_running:
            self._write_hosts(news, vmid, readback["status"])
        before = {f.get("path"): f.get("sha256") for f in olds.get("files") or []}
        self._push_files(news, vmid, readback["status"],
                         [f for f in news.get("files") or [] if before.get(f["path"]) != f["sha256"] or not was_running])
        return _outputs(news, vmid, readback, image_env, olds.get("kept_on_holder"), self._gate(news, vmid, readback))

    def _set_init_user(self, props: dict, vmid: int, running: bool, start: bool) -> dict:
        """lxc.init.uid/gid/cwd from the compose `user:`/`working_dir:` (stop first if running; start after if wanted) ->
        a fresh read back."""
        target = target_of(props)
        user = props["init_user"]
        lines = ["set -eu"]
        if running:
            lines.append(script.q(pct.shutdown_argv(vmid)) + " </dev/null")
        env = user.get("env") or {}  # compose env names PVE's env cannot hold: raw lxc.environment lines, on stdin;
        # always replaced (none left when the file drops them)
        lines.append(script.q(ctinit.write_argv(vmid, user.get("uid"), user.get("gid"), user.get("cwd"), True)))
        if start:
            lines.append(script.q(pct.start_argv(vmid)) + " </dev/null")
        result = _write(target, script.sh(lines), stdin=ctinit.env_stdin(env))
        if not result.ok:
            raise HostCommandError(target.name, f"setting the user of CT {vmid} ({props['app']})", result.stderr)
        result = run(target, ctops.read_script(vmid))
        if not result.ok:
            raise HostCommandError(target.name, f"reading CT {vmid}", result.stderr)
        fresh = ctops.parse_readback(result.stdout)
        return {"config": fresh["config"], "status": fresh["status"], "ip": fresh["ip"]}

    def _push_files(self, props: dict, vmid: int, status: str, files: list) -> None:
        """Files shipped beside a compose file (`files`: [{path, source, sha256}], uploaded to the host by
        AppFiles): PVE bind-mounts folders only, so each is pushed into the running CT, then the CT is
        restarted once so the app reads them. Only new or changed files, only this CT."""
        if not files:
            return
        target = target_of(props)
        if status != "running":
            log.info(target.name, props["app"], f"CT {vmid} is not running; its files are written when it starts")
            return
        log.info(target.name, props["app"], f"writing {', '.join(f['path'] for f in files)} into CT {vmid}; restarting it")
        result = _write(target, ctfiles.push_files_script(vmid, files, restart=True), timeout=CREATE_TIMEOUT)
        if not result.ok:
            raise HostCommandError(target.name, f"writing files into CT {vmid} ({props['app']})", result.stderr)

    def _write_hosts(self, props: dict, vmid: int, status: str) -> None:
        """A compose service's peers by name: /etc/hosts inside the CT (`hosts`: [[address, names...]]).

        Written into the running CT; no restart (resolvers read /etc/hosts on every lookup). A CT
        that is not running gets it the next time homefleet starts it."""
        if not props.get("hosts"):
            return
        target = target_of(props)
        if status != "running":
            log.info(target.name, props["app"], f"CT {vmid} is not running; its /etc/hosts is written when it starts")
            return
        text = ctfiles.hosts_text(props["hosts"])
        upload = f".homefleet-hosts-{secrets.token_hex(8)}"
        put(target, text.encode(), upload, 0o644)
        result = _write(target, ctfiles.push_script(vmid, upload, ctfiles.HOSTS))
        if not result.ok:
            raise HostCommandError(target.name, f"writing /etc/hosts of CT {vmid} ({props['app']})", result.stderr)

    def _set_options(self, news: dict, olds: dict, current: dict, changed: list) -> tuple:
        wanted = pct.spec_options(news)
        if news.get("entrypoint"):
            wanted["entrypoint"] = news["entrypoint"]
        config = current["config"]
        options, delete = {}, []
        for key in changed:
            if key in SETTABLE:
                if key in wanted:
                    options[key] = wanted[key]
                elif key in config:
                    delete.append(key)
            elif re.fullmatch(r"net\d+", key):
                if key in wanted:
                    value = wanted[key]
                    hwaddr = _hwaddr(config.get(key, ""))
                    if hwaddr and "hwaddr=" not in value:
                        value += f",hwaddr={hwaddr}"
                    options[key] = value
                else:
                    delete.append(key)
            elif re.fullmatch(r"dev\d+", key):
                if key in wanted:
                    options[key] = wanted[key]
                else:
                    delete.append(key)
            elif re.fullmatch(r"mp\d+", key):
                if key not in wanted:
                    delete.append(key)
                    continue
                existing = config.get(key, "").split(",", 1)[0]
                slot = dict((k, item) for k, kind, item in pct.mount_slots(news) if kind == "volume")
                if key in slot and existing and not existing.startswith("/"):
                    item = slot[key]
                    value = f"{existing},mp={item['path']},backup={pct.backup_flag(item)}" \
                        + (",ro=1" if item.get("read_only") else "")
                    options[key] = value
                else:
                    options[key] = wanted[key]
        return options, delete

    def _recreate(self, news: dict, olds: dict, current: dict, vmid: int, changed: list) -> dict:
        """Backup, recreate, health gate, rollback: providers/upgrade.py."""
        return upgrade.recreate(self, news, olds, current, vmid, changed)

    def _replace(self, news: dict, olds: dict, current: dict, vmid: int, changed: list) -> dict:
        """The CT destroyed and created again at its vmid, its data volumes carried over a holder."""
        target = target_of(news)
        held = pct.held_volumes(current["config"])
        why = ", ".join(k for k in changed if k in (*RECREATE_KEYS, "volumes"))
        log.info(target.name, news["app"], f"recreating CT {vmid} ({why}); "
                 f"data volumes carried over: {', '.join(sorted(held, key=key_order)) or 'none'}")
        carry = self._carry_read(news, vmid)
        if held:
            self._park(news, vmid, current, held, purge=False)
        else:
            self._destroy(news, vmid, current["status"] == "running", purge=False)
        # The pool comes back with the create itself (`pct create --pool`, as PVE's own restore does).
        try:
            outs = self._create_at({**news, "pool": carry["pool"]} if carry["pool"] else news, vmid)
        except HostCommandError as exc:
            lost = ctops.carry_summary(vmid, carry)
            if isinstance(exc, health.UnhealthyError):  # the new CT is there: it takes them, then the rollback runs
                self._carry_restore(news, vmid, carry)
            elif lost:  # the destroy dropped them and the new CT is not there to take them back
                raise HostCommandError(exc.host, exc.step, exc.stderr + f"\nput back by hand once CT {vmid} runs: {lost}")
            raise
        outs.pop("pool", None)
        self._carry_restore(news, vmid, carry)
        return outs

    def _destroy(self, props: dict, vmid: int, running: bool, purge: bool = True) -> None:
        target = target_of(props)
        result = _write(target, ctops.delete_script(vmid, running, purge=purge), timeout=600)
        if not result.ok and ctops.GONE_MARKER not in result.stderr:
            raise HostCommandError(target.name, f"destroying CT {vmid}", result.stderr)

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
