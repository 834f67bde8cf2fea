"""Where the fake Proxmox tools keep and find things.

`SIM_ROOT` (default `/`) prefixes the real PVE paths (`/etc/pve`, `/var/lib/vz`,
`/run/lock/lxc`); `SIM_STATE` is the host's state folder (simulator-private data lives in
`$SIM_STATE/sim/`); `SIM_NODE` is the node name.
"""

from __future__ import annotations

import os
from pathlib import Path


def sim_root() -> Path:
    return Path(os.environ.get("SIM_ROOT") or "/")


def host_path(real_path: str) -> Path:
    """The file that stands for the real absolute path `real_path` on this host."""
    return sim_root() / real_path.lstrip("/")


def state_dir() -> Path:
    value = os.environ.get("SIM_STATE")
    if value:
        return Path(value)
    return host_path("/var/lib/homefleet-sim")


def private_dir() -> Path:
    return state_dir() / "sim"


def node_name() -> str:
    return os.environ.get("SIM_NODE") or "pve"


def etc_pve() -> Path:
    return host_path("/etc/pve")


def lock_dir() -> Path:
    return host_path("/run/lock/lxc")


def nodes_dir() -> Path:
    return etc_pve() / "nodes"


def lxc_conf_dir(node: str | None = None) -> Path:
    return nodes_dir() / (node or node_name()) / "lxc"


def conf_path(vmid: int, node: str | None = None) -> Path:
    return lxc_conf_dir(node) / f"{vmid}.conf"


def cfs_conf_name(vmid: int, node: str | None = None) -> str:
    """The name PVE uses in messages: `nodes/<node>/lxc/<vmid>.conf`."""
    return f"nodes/{node or node_name()}/lxc/{vmid}.conf"


def storage_cfg() -> Path:
    return etc_pve() / "storage.cfg"


def datacenter_cfg() -> Path:
    return etc_pve() / "datacenter.cfg"


def run_dir() -> Path:
    return private_dir() / "run"


def zfs_root() -> Path:
    return private_dir() / "zfs"


def tools_log() -> Path:
    return state_dir() / "tools.log"


def ensure_layout() -> None:
    """Create the node's config folder and the `/etc/pve/lxc` symlink, as pmxcfs shows them."""
    lxc_conf_dir().mkdir(parents=True, exist_ok=True)
    (nodes_dir() / node_name() / "qemu-server").mkdir(exist_ok=True)
    link = etc_pve() / "lxc"
    if not link.exists() and not link.is_symlink():
        try:
            link.symlink_to(f"nodes/{node_name()}/lxc")
        except FileExistsError:
            pass
    lock_dir().mkdir(parents=True, exist_ok=True)
    run_dir().mkdir(parents=True, exist_ok=True)
