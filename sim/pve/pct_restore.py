"""`pct restore <vmid> <archive> [OPTIONS]` (= `pct create --restore 1`): pve-container
`src/PVE/API2/LXC.pm` create_vm with `restore`, `src/PVE/LXC/Create.pm` (recover_config,
restore_archive, restore_configuration_from_etc_vzdump, sanitize_and_merge_config).

* An existing vmid needs `--force`, and then the CT must be stopped and unprotected; without
  it `CT <vmid> already exists on node '<node>'` (before the task).
* Without `--rootfs`/`--mpN` the volumes come from the archive's config: every volume mount
  point (with or without `backup=1`) is allocated anew on `--storage` (default `local`) at its
  recorded size; bind and device mount points are put back after the extraction.
* With `--force` the old CT's volumes (rootfs, every volume mpN, unusedN, pending) are freed
  after the new ones were allocated (destroy_lxc_container): data on a volume that was not in
  the archive is gone. Bind mount sources are not touched.
* The archive's config fills every key the command line did not give (net with its hwaddr,
  hostname, env, lxc.*, ...), except rootfs/mpN/unusedN/unprivileged/template; `--unique`
  gives each net a new MAC.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from . import appstart, backup_archive, paths, runstate, storage, task, volattrs
from . import conf as conf_mod
from .conf import CTConfig, Section
from .ct_ops import allocate_volume, mount_points, owned_volumes, print_mountpoint, random_hwaddr, \
    update_config
from .ct_schema import NET_DESC
from .errors import PveError
from .pct_power import start_in_task
from .pct_create import check_disk_storages, split_disk_params
from .schema import format_size, parse_property_string, print_property_string

SKIP_KEYS = {"digest", "rootfs", "unprivileged", "parent", "template"}


def archive_path(archive: str, cfg: dict) -> Path:
    """Storage.pm check_volume_access(..., 'backup') + abs_filesystem_path."""
    if archive.startswith("/"):
        return paths.host_path(archive)
    scfg, volname = storage.resolve(archive, cfg)
    vtype = scfg.parse_volname(volname)[0]
    if vtype != "backup":
        raise PveError(f"unable to use volume {archive} - content type needs to be 'backup'")
    return scfg.volume_path(volname)


def restore(params: dict) -> int:
    vmid = int(params["vmid"])
    archive = params["ostemplate"]
    force = params.get("force") == "1"
    exists = conf_mod.exists(vmid)
    if archive == "-":
        raise PveError("restore from STDIN is not supported by the simulator")
    if not (exists and force):
        conf_mod.check_vmid_unused(vmid)
    else:
        if runstate.is_running(vmid):
            raise PveError("can't overwrite running container")
        conf_mod.check_protection(conf_mod.load(vmid), f"unable to restore CT {vmid}")
    default_storage = params.get("storage") or "local"
    cfg = storage.load_config()
    path = archive_path(archive, cfg)

    mp_param, no_disk = split_disk_params(params, default_storage)
    storage_only = not mp_param
    if not storage_only and "rootfs" not in mp_param:
        raise PveError("mount points configured, but 'rootfs' not set - aborting")

    check_disk_storages(mp_param, default_storage, cfg)

    conf = CTConfig(vmid=vmid)
    update_config(conf, False, no_disk, [], [], cfg, lambda msg: None)
    if params.get("unprivileged") == "1":
        conf["unprivileged"] = "1"

    # create_and_lock_config($vmid, $force)
    try:
        with conf_mod.lock_config(vmid, timeout=min(5.0, conf_mod.LOCK_TIMEOUT)):
            if exists and force:
                old = conf_mod.load(vmid)
                conf_mod.check_lock(old)
                old["lock"] = "create"
                conf_mod.write(old)
            else:
                conf_mod.check_vmid_unused(vmid)
                try:
                    conf_mod.create_exclusive(CTConfig(vmid=vmid, main=Section({"lock": "create"})))
                except FileExistsError:
                    raise PveError(f"CT {vmid} already exists on node '{paths.node_name()}'")
    except PveError as err:
        raise PveError(f"unable to restore CT {vmid} - {err.message}")

    def worker(t: task.Task) -> None:
        with conf_mod.lock_config(vmid):
            _restore_worker(t, vmid, conf, mp_param, storage_only, default_storage, archive, path, exists, cfg,
                            params.get("unique") == "1", params.get("unprivileged"))
        if params.get("start") == "1":
            start_in_task(vmid, t)

    return task.run(worker)


def _restore_worker(t: task.Task, vmid: int, conf: CTConfig, mp_param: dict, storage_only: bool,
                    default_storage: str, archive: str, path: Path, existed: bool, cfg: dict, unique: bool,
                    unprivileged: str | None) -> None:
    old_conf = conf_mod.load(vmid)
    destroy_config = not existed
    vollist: list[str] = []
    try:
        t.log(f"recovering backed-up configuration from '{archive}'")
        orig = conf_mod.parse(vmid, backup_archive.read_config(path))
        orig.snapshots = {}
        conf.main.lxc = list(orig.main.lxc)
        if unprivileged is None and orig.get("unprivileged") is not None:
            if orig.get("unprivileged") == "1":
                conf["unprivileged"] = "1"
            else:
                conf.pop("unprivileged")
        delayed: dict[str, str] = {}
        if storage_only:
            for key, mp in mount_points(orig.main.values):
                if mp["type"] == "volume":
                    if not mp.get("size"):
                        raise PveError(f"unable to detect disk size - please specify {key} (size)")
                    size_gib = int(mp.pop("size")) / 1024 ** 3
                    mp["volume"] = f"{default_storage}:{size_gib:g}"
                    mp_param[key] = print_mountpoint(key, mp)
                else:
                    if key == "rootfs":
                        raise PveError(f"restoring rootfs to {mp['type']} mount is only possible by specifying "
                                       "-rootfs manually!")
                    if mp.get("backup") == "1":
                        t.log("WARNING - unsupported configuration!")
                    delayed[key] = print_mountpoint(key, mp)
            if "rootfs" not in mp_param:
                raise PveError("rootfs configuration could not be recovered, please check and specify manually!")
        destroy_config = True
        keys = ["rootfs"] + sorted((k for k in mp_param if k != "rootfs"), key=lambda k: int(k[2:]))
        for key in keys:
            value, volid = allocate_volume(vmid, key, mp_param[key], default_storage, cfg, t.log)
            conf[key] = value
            if volid:
                vollist.append(volid)
        if len(old_conf.main.values) > 1:                  # destroy_lxc_container(old conf)
            for volid in owned_volumes(old_conf):
                try:
                    owner = storage.volume_owner(volid, cfg)
                except PveError:
                    continue
                if owner == vmid:
                    storage.free_volume(volid, cfg)
                else:
                    t.log(f"ignore deletion of '{volid}', CT {vmid} isn't the owner!")
            conf_mod.write(CTConfig(vmid=vmid, main=Section({"lock": "create"})))
        time.sleep(_delay())
        view = appstart.View(conf, cfg)
        t.log(f"restoring '{archive}' now..")
        t.log(f"extracting archive '{path}'")
        total = backup_archive.extract(path, lambda ct_path: _locate(view, ct_path))
        t.log(f"Total bytes read: {total} ({format_size(total)})")
        t.log("merging backed-up and given configuration..")
        _merge(conf, orig, unique)
        for member in ("etc/vzdump/pct.conf", "etc/vzdump/pct.fw"):
            target = view.host("/" + member)
            if member.endswith(".fw") and target.is_file() and target.stat().st_size:
                fw = paths.etc_pve() / "firewall" / f"{vmid}.fw"
                fw.parent.mkdir(parents=True, exist_ok=True)
                fw.write_bytes(target.read_bytes())
            if target.is_file():
                target.unlink()
        conf["hostname"] = conf.get("hostname") or f"CT{vmid}"
        conf["memory"] = conf.get("memory") or "512"
        if conf.get("swap") is None:
            conf["swap"] = "512"
        for key, value in delayed.items():
            conf[key] = value
        conf_mod.write(conf)
    except PveError as err:
        for volid in vollist:
            try:
                storage.free_volume(volid, cfg)
            except PveError as free_err:
                t.log(free_err.message)
        if destroy_config:
            conf_mod.destroy(vmid)
        else:
            _drop_create_lock(vmid)
        raise PveError(f"unable to restore CT {vmid} - {err.message}")


def _delay() -> float:
    """`$SIM_STATE/restore_delay_ms`: a pause after the old volumes were freed and before the
    extraction (fault tests cut the connection there); absent means none."""
    try:
        return max(0.0, float((paths.state_dir() / "restore_delay_ms").read_text().strip() or 0) / 1000)
    except (OSError, ValueError):
        return 0.0


def _drop_create_lock(vmid: int) -> None:
    conf = conf_mod.load(vmid)
    if conf.get("lock") == "create":
        conf.pop("lock")
        conf_mod.write(conf)


def _locate(view: appstart.View, ct_path: str):
    _mount, volid, host, rel = view._find(ct_path)
    return volid, (host / rel if rel else host), rel


def _merge(conf: CTConfig, orig: CTConfig, unique: bool) -> None:
    """Create.pm sanitize_and_merge_config: the archive's keys the command line did not set."""
    for key, value in orig.main.values.items():
        if key in SKIP_KEYS or re.fullmatch(r"(mp|unused)\d+", key) or key == "lock":
            continue
        if unique and re.fullmatch(r"net\d+", key):
            net = parse_property_string(NET_DESC, value, key)
            net["hwaddr"] = random_hwaddr()
            conf[key] = print_property_string(net, NET_DESC)
            continue
        if conf.get(key) is None:
            conf[key] = value


__all__ = ["restore", "volattrs"]
