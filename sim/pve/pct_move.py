"""`pct move-volume <vmid> <volume> [<storage>] [<target-vmid>] [<target-volume>]`
(pve-container `API2/LXC.pm` move_volume)."""

from __future__ import annotations

import re
import shutil
from contextlib import ExitStack

from . import conf as conf_mod
from . import runstate, storage, task
from .ct_ops import parse_volume, print_mountpoint, update_config
from .errors import ParamError, PveError


def move_volume(params: dict) -> int:
    vmid = int(params["vmid"])
    mpkey = params["volume"]
    target_vmid = int(params["target-vmid"]) if params.get("target-vmid") else None
    target_key = params.get("target-volume") or mpkey
    target_storage = params.get("storage") or None
    delete = params.get("delete") == "1"

    if target_storage and target_vmid:
        raise PveError("either set storage or target-vmid, but not both")
    if target_vmid:
        _reassign_checks(vmid, mpkey, target_vmid, target_key)
        return task.run(lambda t: _reassign(t, vmid, mpkey, target_vmid, target_key))
    if target_storage:
        _move_storage_checks(vmid, mpkey, delete)
        return task.run(lambda t: _move_to_storage(t, vmid, mpkey, target_storage, delete))
    msg = "both 'storage' and 'target-vmid' missing, either needs to be set"
    raise ParamError({"target-vmid": msg, "storage": msg})


# --- reassign to another CT ---------------------------------------------------------------------

def _reassign_checks(vmid: int, mpkey: str, target_vmid: int, target_key: str):
    if mpkey == "rootfs" or target_key == "rootfs":
        raise PveError("Cannot move to/from 'rootfs'")
    if mpkey.startswith("unused") and not target_key.startswith("unused"):
        raise PveError("Moving an unused volume to a used one is not possible")
    vmlist = conf_mod.cluster_vmids()
    if vmid not in vmlist:
        raise PveError(f"could not find CT {vmid}")
    if target_vmid not in vmlist:
        raise PveError(f"could not find CT {target_vmid}")
    source_node, target_node = vmlist[vmid][0], vmlist[target_vmid][0]
    if source_node != target_node:
        raise PveError(f"Both containers need to be on the same node ({source_node} != {target_node})")
    source = conf_mod.load(vmid)
    conf_mod.check_lock(source)
    target = source if target_vmid == vmid else conf_mod.load(target_vmid)
    conf_mod.check_lock(target)
    if source.get("template") == "1" or target.get("template") == "1":
        raise PveError("Can't move volumes from or to template CT")
    if mpkey not in source.main.values:
        raise PveError(f"volume '{mpkey}' for container '{vmid}' does not exist")
    if target_key in target.main.values:
        raise PveError(f"Target volume key '{target_key}' is already in use for container '{target_vmid}'")
    drive = parse_volume(mpkey, source[mpkey])
    if not drive.get("volume"):
        raise PveError(f"Volume '{mpkey}' has no associated image")
    if drive["type"] != "volume" or not storage.is_volume_id(drive["volume"]):
        raise PveError("Storage does not support moving of this disk to another container")
    if runstate.is_running(vmid) and not mpkey.startswith("unused"):
        raise PveError("Cannot move in-use volume while the source CT is running - detach or shutdown first")
    conf_mod.check_protection(target, f"cannot assign a volume to target CT {target_vmid}")
    return source, target, drive


def _reassign(t: task.Task, vmid: int, mpkey: str, target_vmid: int, target_key: str) -> None:
    with ExitStack() as stack:
        stack.enter_context(conf_mod.lock_config(vmid))
        if target_vmid != vmid:
            stack.enter_context(conf_mod.lock_config(target_vmid))
        source, target, drive = _reassign_checks(vmid, mpkey, target_vmid, target_key)
        t.log(f"moving volume '{mpkey}' from container '{vmid}' to '{target_vmid}'")
        cfg = storage.load_config()
        scfg, volname = storage.resolve(drive["volume"], cfg)
        new_volid = f"{scfg.storeid}:{scfg.rename_volume(volname, target_vmid)}"
        drive["volume"] = new_volid

        del source.main.values[mpkey]
        t.log(f"removing volume '{mpkey}' from container '{vmid}' config")
        conf_mod.write(source)
        if target_vmid == vmid:
            target = source

        if target_key.startswith("unused"):
            target[target_key] = new_volid
        else:
            drive_string = print_mountpoint(target_key, {k: v for k, v in drive.items()})
            errors = update_config(target, runstate.is_running(target_vmid),
                                   {target_key: drive_string}, [], [], cfg, t.log)
            for message in errors.values():
                t.warn(message)
        conf_mod.write(target)
        t.log(f"target container '{target_vmid}' updated with '{target_key}'")


# --- move to another storage -------------------------------------------------------------------

def _move_storage_checks(vmid: int, mpkey: str, delete: bool) -> None:
    with conf_mod.lock_config(vmid):
        conf = conf_mod.load(vmid)
        conf_mod.check_lock(conf)
        if runstate.is_running(vmid):
            raise PveError("cannot move volumes of a running container")
        if re.fullmatch(r"unused\d+", mpkey):
            raise PveError(f"cannot move volume '{mpkey}', only configured volumes can be moved to "
                           "another storage")
        if mpkey not in conf.main.values:
            raise PveError(f"volume '{mpkey}' for container '{vmid}' does not exist")
        conf["lock"] = "disk"
        conf_mod.write(conf)


def _move_to_storage(t: task.Task, vmid: int, mpkey: str, target_storage: str, delete: bool) -> None:
    try:
        cfg = storage.load_config()
        conf = conf_mod.load(vmid)
        mp = parse_volume(mpkey, conf[mpkey])
        if mp["type"] != "volume":
            raise PveError(f"cannot move non-volume mount point '{mpkey}'")
        old_volid = mp["volume"]
        scfg = storage.check_enabled(target_storage, cfg)
        if "rootdir" not in scfg.content:
            raise PveError(f"storage '{target_storage}' does not allow content type 'rootdir' (Container)")
        size = int(mp.get("size") or storage.get_volume_size(old_volid) or 0)
        new_volid, message = scfg.alloc_disk(vmid, size)
        if message:
            t.log(message)
        shutil.copytree(storage.volume_path(old_volid, cfg), storage.volume_path(new_volid, cfg),
                        symlinks=True, dirs_exist_ok=True)
        with conf_mod.lock_config(vmid):
            conf = conf_mod.load(vmid)
            mp["volume"] = new_volid
            conf[mpkey] = print_mountpoint(mpkey, mp)
            if not delete:
                conf.add_unused_volume(old_volid)
            conf_mod.write(conf)
        if delete:
            storage.free_volume(old_volid, cfg)
    finally:
        with conf_mod.lock_config(vmid):
            if conf_mod.exists(vmid):
                conf = conf_mod.load(vmid)
                if conf.get("lock") == "disk":
                    conf.pop("lock")
                    conf_mod.write(conf)
