"""`pct create <vmid> <ostemplate> [OPTIONS]` (pve-container `API2/LXC.pm` create_vm)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from . import conf as conf_mod
from . import guest_cleanup, oci, ossetup, paths, rootfs_space, storage, task, volattrs
from .conf import CTConfig
from .ct_ops import allocate_volume, mount_points, parse_volume, update_config, warn_plain
from .ct_schema import CONFDESC, NET_DESC
from .errors import ParamError, PveError
from .pct_power import start_in_task
from .schema import Prop, parse_property_string, print_property_string

CREATE_ONLY: dict[str, Prop] = {
    "ostemplate": Prop(optional=False, max_length=255),
    "password": Prop(min_length=5),
    "storage": Prop(format="pve-storage-id"),
    "force": Prop(type="boolean"),
    "restore": Prop(type="boolean"),
    "unique": Prop(type="boolean", requires="restore"),
    "pool": Prop(format="pve-poolid"),
    "ignore-unpack-errors": Prop(type="boolean"),
    "ssh-public-keys": Prop(),
    "bwlimit": Prop(type="number", minimum=0),
    "start": Prop(type="boolean"),
    "ha-managed": Prop(type="boolean"),
}


def template_path(ostemplate: str, cfg: dict) -> Path:
    """check_volume_access + the path of the template file."""
    if ostemplate.startswith("/"):
        return paths.host_path(ostemplate)
    scfg, volname = storage.resolve(ostemplate, cfg)
    vtype, _name, _owner, _fmt = scfg.parse_volname(volname)
    if vtype != "vztmpl":
        raise PveError(f"volume '{ostemplate}' does not have content type 'vztmpl'")
    return scfg.volume_path(volname)


def create_delay() -> float:
    """`DIR/<host>/create_delay_ms`: extra seconds a create takes, as unpacking a real image
    does (the benchmark sets it); absent or unreadable means none."""
    try:
        return max(0.0, float((paths.state_dir() / "create_delay_ms").read_text().strip() or 0) / 1000)
    except (OSError, ValueError):
        return 0.0


def _pool_exists(pool: str) -> bool:
    user_cfg = paths.etc_pve() / "user.cfg"
    if not user_cfg.exists():
        return False
    return any(re.match(rf"pool:{re.escape(pool)}:", line) for line in user_cfg.read_text().splitlines())


def create(params: dict) -> int:
    vmid = int(params["vmid"])
    if params.get("restore") == "1":
        from .pct_restore import restore
        return restore(params)
    unprivileged = params.get("unprivileged", "1") == "1"
    conf_mod.check_vmid_unused(vmid)

    ssh_keys_file = params.get("ssh-public-keys")
    if ssh_keys_file is not None:
        try:
            Path(ssh_keys_file).read_text()
        except OSError as err:
            raise PveError(f"unable to open file '{ssh_keys_file}' - {err.strerror}")
    pool = params.get("pool")
    if pool is not None and not _pool_exists(pool):
        raise PveError(f"pool '{pool}' does not exist")

    ostemplate = params["ostemplate"]
    default_storage = params.get("storage") or "local"
    cfg = storage.load_config()
    tpl_path = template_path(ostemplate, cfg)

    mp_param, no_disk = split_disk_params(params, default_storage)
    if mp_param and "rootfs" not in mp_param:
        raise PveError("mount points configured, but 'rootfs' not set - aborting")

    check_disk_storages(mp_param, default_storage, cfg)

    conf = CTConfig(vmid=vmid)
    update_config(conf, False, no_disk, [], [], cfg, lambda msg: None)
    if unprivileged:
        conf["unprivileged"] = "1"

    # create_and_lock_config: reserve the ID under the config lock
    try:
        with conf_mod.lock_config(vmid, timeout=min(5.0, conf_mod.LOCK_TIMEOUT)):
            conf_mod.check_vmid_unused(vmid)
            try:
                conf_mod.create_exclusive(CTConfig(vmid=vmid, main=conf_mod.Section({"lock": "create"})))
            except FileExistsError:
                raise PveError(f"CT {vmid} already exists on node '{paths.node_name()}'")
    except PveError as err:
        raise PveError(f"unable to create CT {vmid} - {err.message}")

    def worker(t: task.Task) -> None:
        with conf_mod.lock_config(vmid):
            time.sleep(create_delay())
            _create_worker(t, vmid, conf, mp_param, default_storage, ostemplate, tpl_path,
                           unprivileged, cfg)
        if pool is not None:
            guest_cleanup.add_vm_to_pool(vmid, pool)
        if params.get("start") == "1":
            start_in_task(vmid, t)

    return task.run(worker)


def _create_worker(t: task.Task, vmid: int, conf: CTConfig, mp_param: dict[str, str],
                   default_storage: str, ostemplate: str, tpl_path: Path, unprivileged: bool,
                   cfg: dict) -> None:
    vollist: list[str] = []
    try:
        if "rootfs" not in mp_param:
            mp_param["rootfs"] = f"{default_storage}:4"
        if not tpl_path.is_file():
            t.log(f"can't find file '{ostemplate}'")
            raise PveError(f"can't find file '{ostemplate}'")
        is_oci = oci.is_oci_archive(tpl_path)
        if is_oci:
            t.log("Detected OCI archive")

        keys = ["rootfs"] + sorted((k for k in mp_param if k != "rootfs"), key=lambda k: int(k[2:]))
        for key in keys:
            value, volid = allocate_volume(vmid, key, mp_param[key], default_storage, cfg, t.log)
            conf[key] = value
            if volid:
                vollist.append(volid)
        rootfs = parse_volume("rootfs", conf["rootfs"])
        rootdir = (storage.volume_path(rootfs["volume"], cfg) if rootfs["type"] == "volume"
                   else Path(rootfs["volume"]))
        mounts = _mount_all(conf, cfg, rootdir, t)

        if is_oci:
            if not unprivileged:
                raise PveError("Invalid argument")
            rootfs_space.check(tpl_path, int(rootfs.get("size") or 0))
            image = oci.extract(tpl_path, rootdir, mounts, f"/var/lib/lxc/{vmid}/rootfs")
            if rootfs["type"] == "volume":
                volattrs.record_tree(rootfs["volume"], image.dir_attrs)
            settings = oci.image_settings(image, rootdir, t.log)
            conf["arch"] = conf.get("arch") or image.architecture
            _apply_image_settings(conf, settings, t)
        else:
            t.log(f"extracting archive '{tpl_path}'")
            ossetup.populate_classic_rootfs(tpl_path, rootdir)
            t.log(f"Total bytes read: {tpl_path.stat().st_size} (simulated)")
            arch = conf.get("arch") or "amd64"
            t.log(f"Detected container architecture: {arch}")
            conf["arch"] = arch

        if conf.get("ostype") != "unmanaged":
            detected = ossetup.detect_ostype(rootdir, t.log)
            expected = conf.get("ostype") or detected
            if detected != expected:
                t.log(f"got unexpected ostype ({detected} != {expected})")
            conf["ostype"] = detected
        conf["lock"] = "create"
        conf_mod.write(conf)

        conf["hostname"] = conf.get("hostname") or f"CT{vmid}"
        conf["memory"] = conf.get("memory") or "512"
        if conf.get("swap") is None:
            conf["swap"] = "512"
        conf.pop("lock")
        conf_mod.write(conf)
    except PveError as err:
        for volid in vollist:
            try:
                storage.free_volume(volid, cfg)
            except PveError as free_err:
                t.log(free_err.message)
        conf_mod.destroy(vmid)
        raise PveError(f"unable to create CT {vmid} - {err.message}")
    except Exception as err:  # an unexpected simulator failure still cleans up
        for volid in vollist:
            try:
                storage.free_volume(volid, cfg)
            except PveError:
                pass
        conf_mod.destroy(vmid)
        raise PveError(f"unable to create CT {vmid} - {err}")


def _mount_all(conf: CTConfig, cfg: dict, rootdir: Path, t: task.Task) -> list:
    """LXC.pm mount_all($vmid, $storage_cfg, $conf, $ignore_ro = 1), as create_vm calls it
    before extracting: every mount point is mounted, read-write. A bind source that is not a
    directory dies in __mountpoint_mount. The mount path is made in the rootfs
    (__mount_prepare_rootdir). Device mount points are not modelled (nothing to mount)."""
    mounts = []
    for key, mp in mount_points(conf.main.values):
        if key == "rootfs" or not mp.get("mp"):
            continue
        if mp["type"] == "bind":
            source = paths.host_path(mp["volume"])
            if not source.is_dir():
                t.log("mounting container failed")
                raise PveError(f"directory '{mp['volume']}' does not exist")
        elif mp["type"] == "volume":
            source = storage.volume_path(mp["volume"], cfg)
        else:
            continue
        (rootdir / mp["mp"].lstrip("/")).mkdir(parents=True, exist_ok=True)
        mounts.append(oci.Mount(path="/" + mp["mp"].strip("/"), source=source, kind=mp["type"]))
    return mounts


def _apply_image_settings(conf: CTConfig, settings: dict, t: task.Task) -> None:
    if settings["app"]:
        conf["entrypoint"] = settings["entrypoint"]
        conf["cmode"] = "console"
        for key in sorted((k for k in conf.main.values if re.fullmatch(r"net\d+", k)),
                          key=lambda k: int(k[3:])):
            net = parse_property_string(NET_DESC, conf[key], key)
            if "host-managed" not in net:
                t.log(f"Auto-Enabling host-managed network for network device {key}.")
                net["host-managed"] = "1"
                conf[key] = print_property_string(net, NET_DESC)
    if settings["env"] is not None:
        conf["env"] = settings["env"]
    conf.main.lxc.extend(settings["lxc"])


def split_disk_params(params: dict, default_storage: str) -> tuple[dict, dict]:
    """create_vm's split of the parameters (create and restore alike): rootfs/mpN, with a bare
    size allocated on `--storage`, and the rest; unusedN are ignored with a warning."""
    mp_param: dict[str, str] = {}
    no_disk: dict[str, str] = {}
    for key, value in params.items():
        if key not in CONFDESC or key == "unprivileged":
            continue
        if key == "rootfs" or re.fullmatch(r"mp\d+", key):
            mp_param[key] = f"{default_storage}:{value}" if re.fullmatch(r"\d+(\.\d+)?", value) else value
        elif re.fullmatch(r"unused\d+", key):
            warn_plain(f"ignoring '{key}', cannot create/restore with unused volume")
        else:
            no_disk[key] = value
    return mp_param, no_disk


def check_disk_storages(mp_param: dict, default_storage: str, cfg) -> None:
    """create_vm's check of every storage a new volume goes to (and `--storage` when no rootfs
    is given): enabled, and allowing container directories."""
    def check_and_activate(storeid: str) -> None:
        scfg = storage.check_enabled(storeid, cfg)
        if "rootdir" not in scfg.content:
            raise ParamError({"storage": f"storage '{storeid}' does not support container directories"})

    for key in sorted(mp_param):
        mp = parse_volume(key, mp_param[key])
        if mp["type"] == "volume":
            m = re.fullmatch(r"(?:([^/:\s]+):)?(\d+(?:\.\d+)?)", mp["volume"])
            check_and_activate((m.group(1) if m else storage.parse_volume_id(mp["volume"])[0]) or default_storage)
    if "rootfs" not in mp_param:
        check_and_activate(default_storage)
