"""`pct resize <vmid> <disk> <size>`: grow rootfs or a volume mount point.

As pve-container's `resize_vm`: `+N` adds to the current size, `N` is absolute (bytes
unless a K/M/G/T unit follows); shrinking dies `unable to shrink disk size`, the same size
dies `disk is already at specified size`; a bind mount dies in parse_volname
(`unable to parse volume ID '/path'`). Those checks also run before the task (exit 255);
the task itself runs under the config lock, and its failure (e.g. `can't lock file ... -
got timeout` while another command holds the lock) exits 0: `resize` has no `$upid_exit`
in pve-container src/PVE/CLI/pct.pm.
"""

from __future__ import annotations

from . import conf as conf_mod
from . import storage, task
from .ct_ops import parse_volume, print_mountpoint
from .errors import PveError
from .schema import parse_size


def resize(params: dict) -> int:
    vmid = int(params["vmid"])
    disk = params["disk"]
    size_text = params["size"]
    grow = size_text.startswith("+")
    requested = parse_size(size_text.lstrip("+"))
    if requested is None:
        raise PveError(f"invalid size: {size_text}")

    def load_and_check():
        conf = conf_mod.load(vmid)
        conf_mod.check_lock(conf)
        if disk not in conf.main.values:
            raise PveError(f"unable to parse config line: {disk}")
        mp = parse_volume(disk, conf.main.values[disk])
        volid = mp["volume"]
        if mp["type"] != "volume":  # PVE::Storage::parse_volname dies on a host path
            raise PveError(f"unable to parse volume ID '{volid}'")
        size = storage.get_volume_size(volid)
        if size is None:
            raise PveError(f"Could not determine current size of volume '{volid}'")
        newsize = int(size + requested if grow else requested)
        if newsize < size:
            raise PveError("unable to shrink disk size")
        if newsize == size:
            raise PveError("disk is already at specified size")
        return conf, mp, volid, newsize

    load_and_check()  # early checks before forking+locking (resize_vm)

    def worker(t: task.Task) -> None:
        with conf_mod.lock_config(vmid):
            conf, mp, volid, newsize = load_and_check()
            storage.set_volume_size(volid, newsize)
            mp["size"] = str(newsize)
            conf.main.values[disk] = print_mountpoint(disk, mp)
            conf_mod.write(conf)

    return task.run(worker, upid_exit=False)
