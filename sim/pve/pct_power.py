"""`pct start|stop|shutdown|reboot|destroy` (pve-container `API2/LXC/Status.pm`, destroy_vm)."""

from __future__ import annotations

import re

from . import conf as conf_mod
from . import appstart, ctlog, guest_cleanup, paths, runstate, storage, task
from .ct_ops import apply_pending, device_mode_and_rdev, mount_points, owned_volumes
from .errors import PveError


def start_in_task(vmid: int, t: task.Task, skiplock: bool = False) -> None:
    """The vm_start worker: apply pending changes, then mark the CT running."""
    with conf_mod.lock_config(vmid):
        conf = conf_mod.load(vmid)
        if conf.get("template") == "1":
            raise PveError("you can't start a CT if it's a template")
        if not skiplock and conf.get("lock") != "mounted":
            conf_mod.check_lock(conf)
        if conf.get("unprivileged") == "1":
            for _key, mp in mount_points(conf.main.values):
                if mp.get("quota") == "1":
                    raise PveError("Quotas are not supported by unprivileged containers.")
        if not conf.pending.is_empty():
            errors: dict[str, str] = {}
            apply_pending(conf, storage.load_config(), None, errors, t.log)
            conf_mod.write(conf)
        ctlog.reset(vmid)   # LXC.pm vm_start: systemd does not truncate the stderr file
        missing = _missing_at_start(conf)
        if missing:
            # lxc-start's hooks die (their reasons go to the journal, not to the task) and
            # LXC.pm vm_start reports only this
            raise PveError(f"startup for container '{vmid}' failed")
        runstate.mark_running(vmid, conf.get("hostname"))
        appstart.start(vmid, conf)


def _missing_at_start(conf) -> list[str]:
    """What lxc-start needs from the host: bind sources (LXC.pm __mountpoint_mount: directory
    '...' does not exist), bridges (pve-common Network.pm read_bridge_mtu: bridge '...' does
    not exist) and device nodes (LXC/Tools.pm get_device_mode_and_rdev)."""
    missing = []
    for _key, mp in mount_points(conf.main.values):
        if mp["type"] == "bind" and not paths.host_path(mp["volume"]).is_dir():
            missing.append(f"directory '{mp['volume']}' does not exist")
    for key, value in conf.main.values.items():
        if re.fullmatch(r"net\d+", key):
            bridge = re.search(r"(?:^|,)bridge=([^,]+)", value)
            if bridge and not paths.host_path(f"/sys/class/net/{bridge.group(1)}/mtu").is_file():
                missing.append(f"bridge '{bridge.group(1)}' does not exist")
        elif re.fullmatch(r"dev\d+", key):
            try:
                device_mode_and_rdev(value.split(",")[0].removeprefix("path="))
            except PveError as err:
                missing.append(err.message)
    return missing


def start(params: dict) -> int:
    vmid = int(params["vmid"])
    if runstate.is_running(vmid):
        raise PveError(f"CT {vmid} already running")
    skiplock = params.get("skiplock") == "1"
    return task.run(lambda t: start_in_task(vmid, t, skiplock))


def _stop_worker(vmid: int, skiplock: bool):
    def worker(t: task.Task) -> None:
        with conf_mod.lock_config(vmid):
            conf = conf_mod.load(vmid)
            if not skiplock:
                conf_mod.check_lock(conf)
            runstate.mark_stopped(vmid)
    return worker


def stop(params: dict) -> int:
    vmid = int(params["vmid"])
    if not runstate.is_running(vmid):
        raise PveError(f"CT {vmid} not running")
    return task.run(_stop_worker(vmid, params.get("skiplock") == "1"))


def shutdown(params: dict) -> int:
    vmid = int(params["vmid"])
    if not runstate.is_running(vmid):
        raise PveError(f"CT {vmid} not running")
    return task.run(_stop_worker(vmid, False))


def reboot(params: dict) -> int:
    vmid = int(params["vmid"])
    if not runstate.is_running(vmid):
        raise PveError(f"CT {vmid} not running")

    def worker(t: task.Task) -> None:
        _stop_worker(vmid, False)(t)
        start_in_task(vmid, t)

    return task.run(worker)


# --- destroy -------------------------------------------------------------------------------------

def _ha_managed(vmid: int) -> bool:
    resources = paths.etc_pve() / "ha" / "resources.cfg"
    if not resources.exists():
        return False
    return any(re.fullmatch(rf"ct:\s*{vmid}\s*", line) for line in resources.read_text().splitlines())


def _early_checks(conf: conf_mod.CTConfig, vmid: int, purge: bool) -> None:
    conf_mod.check_protection(conf, f"can't remove CT {vmid}")
    conf_mod.check_lock(conf)
    if not purge and _ha_managed(vmid):
        raise PveError(f"unable to remove CT {vmid} - used in HA resources and purge parameter not set.")
    if not purge:
        job = guest_cleanup.replication_job(vmid)
        if job:  # pve-guest-common ReplicationConfig.pm check_for_existing_jobs
            raise PveError(f"There is a replication job '{job}' for guest '{vmid}' - Please remove that first.")


def destroy(params: dict) -> int:
    vmid = int(params["vmid"])
    purge = params.get("purge") == "1"
    force = params.get("force") == "1"
    unreferenced = params.get("destroy-unreferenced-disks") == "1"
    conf = conf_mod.load(vmid)
    _early_checks(conf, vmid, purge)
    running_error = f"unable to destroy CT {vmid} - container is running"
    if not force and runstate.is_running(vmid):
        raise PveError(running_error)

    def worker(t: task.Task) -> None:
        with conf_mod.lock_config(vmid):
            current = conf_mod.load(vmid)
            _early_checks(current, vmid, purge)
            if runstate.is_running(vmid):
                if not force:
                    raise PveError(running_error)
                t.log(f"forced to stop CT {vmid} before destroying!")
                runstate.mark_stopped(vmid)
            current["lock"] = "destroyed"
            conf_mod.write(current)
            cfg = storage.load_config()
            for volid in owned_volumes(current):
                try:
                    if storage.volume_owner(volid, cfg) == vmid:
                        storage.free_volume(volid, cfg)
                except PveError as err:
                    t.log(err.message)
            if unreferenced:
                _destroy_unreferenced(vmid, cfg, t)
            guest_cleanup.remove_vm_access(vmid)
            guest_cleanup.remove_vmfw_conf(vmid)
            if purge:
                t.log(f"purging CT {vmid} from related configurations..")
                guest_cleanup.remove_vmid_from_backup_jobs(vmid)
                if guest_cleanup.remove_ha_resource(vmid):
                    t.log(f"NOTE: removed CT {vmid} from HA resource configuration.")
            conf_mod.destroy(vmid)

    return task.run(worker)


def _destroy_unreferenced(vmid: int, cfg: dict, t: task.Task) -> None:
    for scfg in cfg.values():
        if scfg.disabled or not (scfg.content & {"images", "rootdir"}):
            continue
        try:
            volumes = scfg.list_volumes()
        except PveError:
            continue
        for vol in volumes:
            if vol.get("vmid") == vmid:
                try:
                    storage.free_volume(vol["volid"], cfg)
                except PveError as err:
                    t.log(err.message)
