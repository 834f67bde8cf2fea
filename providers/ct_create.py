"""How a ProxmoxCT comes to be: a new CT at a free (or the given) vmid, its data volumes taken
back from a holder; a CT an interrupted run left with this app's marker, taken over; an existing
CT adopted as it is. Mixed into ProxmoxCTProvider (plain methods, no state: the provider is
pickled into the Pulumi state), which provides `_apply`, `_gate` and `_read_current`.
"""

import re
import secrets
import threading
from typing import Optional

from pulumi.dynamic import CreateResult

from . import log
from .base import target_of
from .ct_data import CREATE_TIMEOUT, adopt_problem, paths_text, takeback_plan, write
from .ct_outputs import outputs_of, template_of
from .errors import HostCommandError, OwnershipError
from .hosts import ctenv, ctops, pct, preflight
from .transport import put, run

# vmids this process handed out already, per host (see CtCreate._allocate)
_claimed_lock = threading.Lock()
_claimed: dict = {}


def _host_path_mount(key: str, value: str) -> bool:
    """An mpN whose source is a host path (a bind mount, or a block device)."""
    return bool(re.fullmatch(r"mp\d+", key)) and value.split(",", 1)[0].startswith("/")


class CtCreate:
    """Create, take over and adopt steps of ProxmoxCTProvider."""

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
        result = write(target, argv, stdin=ctenv.stdin_data(env), timeout=CREATE_TIMEOUT)
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
        return outputs_of(props, vmid, readback, image_env, kept, self._gate(props, vmid, readback))

    def _take_over(self, props: dict, vmid: int) -> dict:
        """A CT with this app's marker that no state records: an earlier run created it and was
        killed (or lost its connection) before it could say so. Bring it to the spec."""
        target = target_of(props)
        current = self._read_current(props, vmid)
        if current is None or pct.owner_of(current["config"]) != (props["stack"], props["app"]):
            raise HostCommandError(target.name, f"taking over CT {vmid} for {props['app']}",
                                   f"CT {vmid} changed while it was read; run `pulumi up` again")
        log.info(target.name, props["app"], f"CT {vmid} carries this app's marker from an interrupted run; taking it over")
        olds = outputs_of(props, vmid, current, self._image_env(props, template_of(current["config"]) or props["template"]))
        olds["template"] = template_of(current["config"]) or props["template"]
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
        olds = outputs_of(props, vmid, current, self._image_env(props, props["template"]))
        olds["template"] = props["template"]
        outs = self._apply(props, olds, current, vmid)
        return CreateResult(f"{target.name}/{vmid}", outs)
