"""Container config operations shared by the pct commands (pve-container `LXC/Config.pm`).

Mount point and network normalisation, disk allocation, and the pending-change machinery
(`update_pct_config`, `vmconfig_apply_pending`, `vmconfig_hotplug_pending`).
"""

from __future__ import annotations

import os
import random
import re
import stat
import sys
from typing import Callable

from . import paths, pveversion, storage
from .conf import CTConfig, check_protection
from .ct_schema import (FASTPLUG, MP_DESC, NET_DESC, ROOTFS_DESC, UNUSED_DESC, DEV_DESC,
                        classify_mountpoint)
from .errors import PveError
from .schema import (FormatError, format_size, parse_property_string, parse_size,
                     print_property_string, split_list)

NEW_DISK_RE = re.compile(r"(?:([^/:\s]+):)?(\d+(?:\.\d+)?)")
BRIDGE_MTU = 1500

Log = Callable[[str], None]


def warn_plain(message: str) -> None:
    """A Perl `warn` outside a task: straight to stderr."""
    sys.stderr.write(message.rstrip("\n") + "\n")


# --- mount points -----------------------------------------------------------------------------

def parse_volume(key: str, value: str) -> dict[str, str]:
    desc = ROOTFS_DESC if key == "rootfs" else UNUSED_DESC if key.startswith("unused") else MP_DESC
    try:
        mp = parse_property_string(desc, value, key)
    except FormatError as err:
        raise PveError(str(err).rstrip("\n"))
    if "keepattrs" in mp and pveversion.container_version() < (6, 1, 2):
        # the flag arrived in pve-container 6.1.2 (commit 6dccbc4); older schemas refuse it
        raise PveError("invalid key in comma-separated list property: keepattrs")
    if "size" in mp:
        size = parse_size(mp["size"])
        if size is None:
            raise PveError(f"invalid size: {mp['size']}")
        mp["size"] = str(size)
    if key == "rootfs":
        mp["mp"] = "/"
    mp["type"] = classify_mountpoint(mp["volume"])
    return mp


def print_mountpoint(key: str, mp: dict[str, str]) -> str:
    data = {k: v for k, v in mp.items() if k != "type"}
    if "size" in data:
        data["size"] = format_size(int(data["size"]))
    if key == "rootfs":
        data.pop("mp", None)
        return print_property_string(data, ROOTFS_DESC)
    return print_property_string(data, MP_DESC)


def mount_points(values: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """rootfs first, then mpN in numeric order (foreach_volume)."""
    keys = [k for k in values if re.fullmatch(r"mp\d+", k)]
    keys.sort(key=lambda k: int(k[2:]))
    if "rootfs" in values:
        keys.insert(0, "rootfs")
    res = []
    for key in keys:
        try:
            res.append((key, parse_volume(key, values[key])))
        except PveError:
            continue
    return res


def used_volids(values: dict[str, str]) -> set[str]:
    return {mp["volume"] for _k, mp in mount_points(values) if mp["type"] == "volume"}


def is_volume_in_use(conf: CTConfig, volid: str, include_pending: bool = True) -> bool:
    if volid in used_volids(conf.main.values):
        return True
    for snap in conf.snapshots.values():
        if volid in used_volids(snap.values):
            return True
    return include_pending and volid in used_volids(conf.pending.values)


def drop_used_unused(conf: CTConfig) -> None:
    """write_pct_config: remove `unusedN` entries whose volume is still in use."""
    used = used_volids(conf.main.values)
    for key in [k for k in conf.main.values if k.startswith("unused")]:
        if conf.main.values[key] in used:
            del conf.main.values[key]


def owned_volumes(conf: CTConfig) -> list[str]:
    """Every storage volume the config refers to: rootfs, mpN, unusedN, pending ones."""
    seen: list[str] = []
    for values in [conf.main.values, conf.pending.values] + [s.values for s in conf.snapshots.values()]:
        for _key, mp in mount_points(values):
            if mp["type"] == "volume" and storage.is_volume_id(mp["volume"]) and mp["volume"] not in seen:
                seen.append(mp["volume"])
        for key, value in values.items():
            if re.fullmatch(r"unused\d+", key) and value not in seen:
                seen.append(value)
    return seen


def allocate_volume(vmid: int, key: str, value: str, default_storage: str | None,
                    cfg: dict, log: Log) -> tuple[str, str | None]:
    """If `value` asks for a new disk (`STORAGE:SIZE_GiB`), allocate it.
    -> (normalised value, new volid or None)"""
    mp = parse_volume(key, value)
    m = NEW_DISK_RE.fullmatch(mp["volume"]) if mp["type"] == "volume" else None
    if not m:
        return print_mountpoint(key, mp), None
    storeid = m.group(1) or default_storage
    if not storeid:
        raise PveError(f"no storage ID specified (and no default storage)")
    scfg = storage.check_enabled(storeid, cfg)
    if "rootdir" not in scfg.content:
        raise PveError(f"storage '{storeid}' does not allow content type 'rootdir' (Container)")
    size = int(float(m.group(2)) * 1024 * 1024 * 1024)
    volid, message = scfg.alloc_disk(vmid, size)
    if message:
        log(message)
    mp["volume"] = volid
    mp["size"] = str(size)
    return print_mountpoint(key, mp), volid


def check_volume_storage(mp: dict[str, str], cfg: dict) -> None:
    if mp["type"] != "volume":
        return
    m = NEW_DISK_RE.fullmatch(mp["volume"])
    storeid = m.group(1) if m else storage.parse_volume_id(mp["volume"])[0]
    if storeid is None:
        return
    scfg = storage.get_storage(storeid, cfg)
    if "rootdir" not in scfg.content:
        raise PveError(f"storage '{storeid}' does not allow content type 'rootdir' (Container)")


# --- network -----------------------------------------------------------------------------------

def random_hwaddr() -> str:
    tail = [random.randint(0, 255) for _ in range(3)]
    return "BC:24:11:" + ":".join(f"{b:02X}" for b in tail)


def normalize_net(key: str, value: str) -> str:
    try:
        net = parse_property_string(NET_DESC, value, key)
    except FormatError as err:
        raise PveError(str(err).rstrip("\n"))
    net["type"] = "veth"
    if not net.get("hwaddr"):
        net["hwaddr"] = random_hwaddr()
    return print_property_string(net, NET_DESC)


def check_net(key: str, value: str) -> None:
    try:
        net = parse_property_string(NET_DESC, value, key)
    except FormatError as err:
        raise PveError(str(err).rstrip("\n"))
    if net.get("mtu") and int(net["mtu"]) > BRIDGE_MTU:
        raise PveError(f"{key}: MTU size '{net['mtu']}' is bigger than bridge MTU '{BRIDGE_MTU}'")
    if (net.get("link_down") != "1" and net.get("host-managed") == "1"
            and net.get("ip6") == "auto"):
        raise PveError(f"{key}: SLAAC is not supported for host-managed network configuration.")


def unique_tags(value: str) -> str:
    tags = sorted({t.lower() for t in split_list(value)})
    return ";".join(tags)


# --- update_pct_config -------------------------------------------------------------------------

def update_config(conf: CTConfig, running: bool, params: dict[str, str], delete: list[str],
                  revert: list[str], cfg: dict, log: Log) -> dict[str, str]:
    vmid = conf.vmid
    for opt in revert:
        conf.pending.values.pop(opt, None)
        conf.remove_from_pending_delete(opt)

    modified: set[str] = set()
    for opt in delete:
        if opt not in conf.main.values and opt not in conf.pending.values:
            warn_plain(f"cannot delete '{opt}' - not set in current configuration!")
            continue
        modified.add(opt)
        if opt in ("memory", "rootfs", "ostype"):
            raise PveError(f"unable to delete required option '{opt}'")
        if re.fullmatch(r"(unused|mp)\d+", opt):
            check_protection(conf, f"can't remove CT {vmid} drive '{opt}'")
        elif opt == "unprivileged":
            raise PveError(f"unable to delete read-only option: '{opt}'")
        conf.add_to_pending_delete(opt)

    for opt in sorted(params):
        modified.add(opt)
        value = params[opt]
        if opt == "rootfs" or re.fullmatch(r"mp\d+", opt):
            check_protection(conf, f"can't update CT {vmid} drive '{opt}'")
            check_volume_storage(parse_volume(opt, value), cfg)
        elif opt == "nameserver" or opt == "searchdomain":
            value = " ".join(split_list(value))
        elif opt == "unprivileged":
            raise PveError(f"unable to modify read-only option: '{opt}'")
        elif opt == "tags":
            value = unique_tags(value)
        elif re.fullmatch(r"net\d+", opt):
            check_net(opt, value)
        elif re.fullmatch(r"dev\d+", opt):
            try:
                dev = parse_property_string(DEV_DESC, value, opt)
            except FormatError as err:
                raise PveError(str(err).rstrip("\n"))
            if not dev.get("path"):
                raise PveError(f"Path is not defined for passthrough device {opt}")
            device_mode_and_rdev(dev["path"])
        conf.pending.values[opt] = value
        conf.remove_from_pending_delete(opt)

    conf.cleanup_pending()
    errors: dict[str, str] = {}
    if running:
        hotplug_pending(conf, cfg, modified, errors, log)
    else:
        apply_pending(conf, cfg, modified, errors, log)
    return errors


def device_mode_and_rdev(path: str) -> tuple[int, int]:
    """pve-container LXC/Tools.pm get_device_mode_and_rdev, as update_pct_config calls it for
    every devN (so `pct create` and `pct set` refuse a node the host lacks)."""
    try:
        st = os.stat(paths.host_path(path))
    except FileNotFoundError:
        raise PveError(f"Device {path} does not exist")
    except OSError:
        raise PveError(f"Error accessing device {path}")
    if not (stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode)):
        raise PveError(f"{path} is not a device")
    return st.st_mode, st.st_rdev


def _free_unused(conf: CTConfig, volid: str, cfg: dict) -> None:
    if is_volume_in_use(conf, volid):
        return
    try:
        owner = storage.volume_owner(volid, cfg)
    except PveError:
        return
    if owner == conf.vmid:
        storage.free_volume(volid, cfg)


def apply_pending_mountpoint(conf: CTConfig, opt: str, cfg: dict, running: bool, log: Log) -> None:
    old = conf.main.values.get(opt)
    value, new_volid = allocate_volume(conf.vmid, opt, conf.pending.values[opt], None, cfg, log)
    if new_volid is None and running and old is not None:
        raise _Skip()
    conf.pending.values[opt] = value
    if old is not None:
        try:
            old_mp = parse_volume(opt, old)
        except PveError:
            return
        if old_mp["type"] == "volume":
            conf.add_unused_volume(old_mp["volume"])


class _Skip(Exception):
    pass


def apply_pending(conf: CTConfig, cfg: dict, selection: set[str] | None,
                  errors: dict[str, str], log: Log) -> None:
    """vmconfig_apply_pending: a stopped CT gets everything."""
    for opt in sorted(conf.pending_delete()):
        if selection is not None and opt not in selection:
            continue
        try:
            if re.fullmatch(r"mp\d+", opt) and opt in conf.main.values:
                mp = parse_volume(opt, conf.main.values[opt])
                if mp["type"] == "volume":
                    conf.add_unused_volume(mp["volume"])
            elif re.fullmatch(r"unused\d+", opt) and opt in conf.main.values:
                volid = conf.main.values.pop(opt)
                _free_unused(conf, volid, cfg)
        except PveError as err:
            _apply_error(errors, opt, err, log)
            continue
        conf.main.values.pop(opt, None)
        conf.remove_from_pending_delete(opt)
    conf.cleanup_pending()
    for opt in sorted(conf.pending.values):
        if opt == "delete" or (selection is not None and opt not in selection):
            continue
        try:
            if opt == "rootfs" or re.fullmatch(r"mp\d+", opt):
                apply_pending_mountpoint(conf, opt, cfg, False, log)
            elif re.fullmatch(r"net\d+", opt):
                conf.pending.values[opt] = normalize_net(opt, conf.pending.values[opt])
        except PveError as err:
            _apply_error(errors, opt, err, log)
            continue
        conf.main.values[opt] = conf.pending.values.pop(opt)
    drop_used_unused(conf)


def _apply_error(errors: dict[str, str], opt: str, err: PveError, log: Log) -> None:
    msg = f"unable to apply pending change {opt} : {err.message}"
    errors[opt] = msg
    log(msg)


def hotplug_pending(conf: CTConfig, cfg: dict, selection: set[str] | None,
                    errors: dict[str, str], log: Log) -> None:
    """vmconfig_hotplug_pending: a running CT gets fastplug and hotplug changes only."""
    for opt in sorted(conf.pending.values):
        if opt == "delete" or (selection is not None and opt not in selection):
            continue
        if opt in FASTPLUG:
            conf.main.values[opt] = conf.pending.values.pop(opt)

    for opt in sorted(conf.pending_delete()):
        if selection is not None and opt not in selection:
            continue
        if opt in FASTPLUG or opt in ("swap", "cpulimit", "cpuunits") or re.fullmatch(r"net\d+", opt):
            pass
        elif re.fullmatch(r"unused\d+", opt):
            volid = conf.main.values.pop(opt, None)
            if volid:
                _free_unused(conf, volid, cfg)
        else:
            continue  # not hot-deletable: stays pending
        conf.main.values.pop(opt, None)
        conf.remove_from_pending_delete(opt)

    for opt in sorted(conf.pending.values):
        if opt == "delete" or (selection is not None and opt not in selection):
            continue
        try:
            if opt in ("cpulimit", "cpuunits", "memory", "swap"):
                pass
            elif re.fullmatch(r"net\d+", opt):
                conf.pending.values[opt] = normalize_net(opt, conf.pending.values[opt])
            elif re.fullmatch(r"mp\d+", opt):
                if opt in conf.main.values:
                    continue
                apply_pending_mountpoint(conf, opt, cfg, True, log)
                mp = parse_volume(opt, conf.pending.values[opt])
                if mp["type"] == "bind" and not paths.host_path(mp["volume"]).is_dir():
                    # LXC.pm mountpoint_hotplug -> __mountpoint_mount
                    raise PveError(f"directory '{mp['volume']}' does not exist")
            elif re.fullmatch(r"dev\d+", opt):
                if opt in conf.main.values:
                    continue
            else:
                continue
        except _Skip:
            continue
        except PveError as err:
            errors[opt] = f"unable to hotplug {opt}: {err.message}"
            continue
        conf.main.values[opt] = conf.pending.values.pop(opt)
    drop_used_unused(conf)
