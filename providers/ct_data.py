"""A CT's data across a recreate, a delete and an adopt: the data holder, parking, what a
destroy drops and is carried over, and what adopt refuses. Mixed into ProxmoxCTProvider
(plain methods, no state: the provider is pickled into the Pulumi state).

Trust: a holder is what `pct.holder_of` recognises on a config read here, never what a grep
found; volumes are matched by container path; a holder that still holds a volume is kept.
"""

import re
import secrets
from typing import Optional

from . import hostcache, log
from .base import target_of
from .errors import HostCommandError
from .hosts import ctops, ctview, holder_image, pct, skopeo
from .transport import put, run

CREATE_TIMEOUT = 1800
VMID_ATTEMPTS = 5


def view_spec(spec: dict) -> dict:
    """The spec as ctview sees it: secret env values hidden behind their names."""
    hidden = {k: "[secret]" for k in (spec.get("secret_env") or {})}
    return {**spec, "env": {**(spec.get("env") or {}), **hidden}}


def write(target, argv, **kwargs):
    """Run a command that changes the host; the host's cached read is stale after it."""
    try:
        return run(target, argv, **kwargs)
    finally:
        hostcache.invalidate(target)


def adopt_problem(props: dict, current: dict) -> Optional[str]:
    """Why adopting this CT would recreate it (and so destroy what is adopted), or None.

    Adopt takes a CT over as it is; a difference that only a new CT can carry (privilege,
    rootfs storage, a data volume at another path) is refused instead of recreating it."""
    config = current["config"]
    owner = pct.owner_of(config)
    if owner is not None and owner != (props["stack"], props["app"]):
        return f"it belongs to stack {owner[0]} app {owner[1]}"
    if pct.holder_of(config) is not None:
        return "it is a homefleet data holder"
    observed = ctview.from_config(config, current["status"], props)
    desired = ctview.from_spec(view_spec(props), {})
    reasons = []
    if observed.get("unprivileged") != desired.get("unprivileged"):
        have = "unprivileged" if observed.get("unprivileged") == "1" else "privileged"
        want = "unprivileged" if desired.get("unprivileged") == "1" else "privileged"
        reasons.append(f"it is {have} and the app asks for {want} (PVE cannot change that in place"
                       + ("; an OCI app is always unprivileged" if props.get("template_kind", "oci") == "oci" else "")
                       + ")")
    if observed.get("rootfs") != desired.get("rootfs"):
        reasons.append(f"its rootfs is on storage {observed.get('rootfs')!r}, the app asks for {desired.get('rootfs')!r}")
    moved = volume_path_changes(config, props)
    if moved:
        reasons.append("its data volumes are at other paths than the app's (" + "; ".join(moved) + ")")
    if not reasons:
        return None
    return ("; ".join(reasons) + ". Adopting would recreate it and lose its root disk: make the app's "
            "settings match the CT (unprivileged, storage, volumes), or remove `adopt`")


def volume_path_changes(config: dict, props: dict) -> list:
    """`mpN: /old -> /new` for slots where a storage volume the CT holds would get another
    container path (the data would show up at the wrong place)."""
    wanted = {key: item for key, kind, item in pct.mount_slots(props)}
    changes = []
    for key, path in pct.held_volumes(config).items():
        item = wanted.get(key)
        if key.startswith("mp") and item is not None and item.get("path") != path and "source" not in item:
            changes.append(f"{key}: {path} -> {item.get('path')}")
    return changes


def key_order(key: str) -> tuple:
    return (key.startswith("unused"), int(re.sub(r"\D", "", key) or 0))


def paths_text(held: dict) -> str:
    """The container paths of {key: path} volumes, for messages (an unused volume by its key)."""
    return ", ".join(sorted(p or k for k, p in held.items()))


def takeback_plan(props: dict, holder_conf: Optional[dict]) -> tuple:
    """([(holder key, new CT key)], {holder key: path left on the holder}).

    Matched by container path, never by slot: the volume that was at /config goes back to
    /config whatever its mpN, and a volume whose path the spec no longer names stays on the
    holder (which is then kept, not destroyed)."""
    wanted = {item["path"]: key for key, kind, item in pct.mount_slots(props) if kind == "volume"}
    held = pct.held_volumes(holder_conf or {})
    moves, left = [], {}
    for hkey in sorted(held, key=key_order):
        path = held[hkey]
        if hkey.startswith("mp") and path in wanted:
            moves.append((hkey, wanted.pop(path)))
        else:
            left[hkey] = path
    return moves, left


def park_moves(host: str, held: dict, holder_conf: Optional[dict], holder: Optional[int]) -> list:
    """[(CT key, holder key)]: each volume to a free key of the holder (its own key when free).

    A holder that already holds a volume for the same path (parked earlier, never taken back)
    is not given a second one: which one is the data would be a guess, so refuse."""
    on_holder = pct.held_volumes(holder_conf or {})
    taken = {k for k in (holder_conf or {}) if re.fullmatch(r"(mp|unused)\d+", k)}
    clash = sorted(p for p in held.values() if p and p in on_holder.values())
    if clash:
        raise HostCommandError(
            host, f"parking data volumes on holder CT {holder}",
            f"holder CT {holder} already holds a volume for {', '.join(clash)}; homefleet will not put a second one "
            f"there. Move or remove one of them by hand (`pct config {holder}`), then run `pulumi up` again")
    moves = []
    for key in sorted(held, key=key_order):
        prefix = "unused" if key.startswith("unused") else "mp"
        target = key
        n = 0
        while target in taken:
            target = f"{prefix}{n}"
            n += 1
        taken.add(target)
        moves.append((key, target))
    return moves


def template_storage(props: dict) -> str:
    """The template storage of the app's own template (`STORE:vztmpl/...`): where the holder's goes."""
    return props.get("template_storage") or props["template"].split(":", 1)[0]


class DataVolumes:
    """Holder, parking and carry-over steps of ProxmoxCTProvider (`_allocate` comes from ct_create.CtCreate)."""

    def _find_holder(self, props: dict, candidates: list) -> tuple:
        """(vmid, config, refused vmids) of this app's real holder among CTs whose description has
        the holder line; (None, None, refused) when none is. Checked here, in Python, before any
        volume moves or any CT is destroyed: a look-alike (a foreign CT, or one whose description a
        PVE user edited) is never used."""
        target = target_of(props)
        result = run(target, ctops.holder_candidates_script(props["stack"], props["app"]))
        if not result.ok:
            raise HostCommandError(target.name, f"reading the data holders of {props['app']}", result.stderr)
        configs = ctops.parse_holder_candidates(result.stdout)
        refused, found = [], []
        for vmid in sorted(set(candidates) | set(configs)):
            conf = configs.get(vmid)
            if conf is not None and pct.holder_of(conf) == (props["stack"], props["app"]):
                found.append(vmid)
            else:
                refused.append(vmid)
                log.info(target.name, props["app"], f"CT {vmid} has this app's holder line in its description but is "
                                                    "not a homefleet data holder: left alone")
        if not found:
            return None, None, refused
        return found[0], configs[found[0]], refused + found[1:]

    def _image_env(self, props: dict, template: str) -> dict:
        """The env the image itself sets, read from its archive: never the CT's env, which holds
        the user's values and secrets (they would become a plain output)."""
        if props.get("template_kind", "oci") != "oci":
            return {}
        target = target_of(props)
        result = run(target, skopeo.image_config_script(template))
        if not result.ok:
            raise HostCommandError(target.name, f"reading the image config of {template}", result.stderr)
        return skopeo.parse_image_env(result.stdout)

    def _carry_read(self, props: dict, vmid: int) -> dict:
        """Before a recreate at the same vmid: what the destroy would drop (firewall file, ACL
        entries, pool membership), kept to put back; an HA-managed CT is refused, as PVE refuses to destroy it
        without `--purge`, which would drop it from HA, replication and its backup jobs."""
        target = target_of(props)
        result = run(target, ctops.carry_read_script(vmid))
        if not result.ok:
            raise HostCommandError(target.name, f"reading what CT {vmid} carries (firewall, ACLs, HA)", result.stderr)
        carry = ctops.parse_carry(result.stdout)
        if carry["replicated"]:
            raise HostCommandError(
                target.name, f"recreating CT {vmid} for {props['app']}",
                f"CT {vmid} has replication jobs; PVE destroys it only with --purge, which drops them and its backup "
                f"jobs. Nothing was changed. Remove its replication jobs (`pvesr list`), run `pulumi up`, then add "
                "them back")
        if carry["ha"]:
            raise HostCommandError(
                target.name, f"recreating CT {vmid} for {props['app']}",
                f"CT {vmid} is managed by HA; PVE destroys it only with --purge, which also drops it from its backup "
                f"jobs and replication. Nothing was changed. Remove it from HA (`ha-manager remove ct:{vmid}`), run "
                "`pulumi up`, then add it back")
        return carry

    def _carry_restore(self, props: dict, vmid: int, carry: dict) -> None:
        if not carry["acls"] and carry["firewall"] is None:
            return
        target = target_of(props)
        argv = ctops.carry_restore_script(vmid, carry["acls"], carry["firewall"] is not None)
        result = write(target, argv, stdin=carry["firewall"] or b"")
        if not result.ok:
            raise HostCommandError(target.name, f"restoring the firewall rules and ACLs of CT {vmid}",
                                   result.stderr + f"\nCT {vmid} runs; put its firewall file and ACL entries back by hand")
        log.info(target.name, props["app"], f"CT {vmid}: firewall file and {len(carry['acls'])} ACL entries carried over")

    def _park(self, props: dict, vmid: int, current: dict, held: dict, purge: bool = True) -> int:
        """Move the CT's volumes (`held`: {key: path}) to this app's holder, then destroy the CT.

        The holder is this app's existing one (found and checked in Python, see `_find_holder`)
        or a new one made from homefleet's tiny holder archive."""
        target = target_of(props)
        found, conf, _refused = self._find_holder(props, [])
        moves = park_moves(target.name, held, conf, found)
        template = holder_image.volid(template_storage(props))
        tried = {vmid}
        for _attempt in range(VMID_ATTEMPTS):
            holder = found if found is not None else self._allocate(props, tried)
            upload = None
            if found is None:
                upload = f".homefleet-holder-{secrets.token_hex(8)}.tar"
                put(target, holder_image.archive(), upload, 0o644)
            argv = ctops.park_script(vmid, holder, pct.holder_options(props), moves, current["status"] == "running",
                                     reuse=found, holder_template=template, purge=purge, upload=upload)
            result = write(target, argv, timeout=CREATE_TIMEOUT)
            if result.ok:
                holder = ctops.parse_parked(result.stdout) or holder
                log.info(target.name, props["app"], f"data volumes for {paths_text(held)} are kept on holder CT {holder}")
                return holder
            if found is None and f"{holder} already exists" in result.stderr:
                # `CT N already exists on node` or `VM N already exists on node`: nextid reserves
                # nothing, so another CT or VM took the id first. The holder's create failed
                # before anything moved: try the next id.
                tried.add(holder)
                log.info(target.name, props["app"], f"vmid {holder} was taken meanwhile; parking with another")
                continue
            raise HostCommandError(
                target.name, f"moving the data volumes of CT {vmid} to holder CT {holder}",
                result.stderr + f"\nthe volumes are on CT {vmid} or CT {holder}; the next `pulumi up` resumes",
            )
        raise HostCommandError(target.name, f"allocating a holder CT for {props['app']}", "every vmid tried was taken")

