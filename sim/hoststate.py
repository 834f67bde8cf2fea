"""A simulated host's state folder, `DIR/<host>/`, and what it bind-mounts where.

Files a test or a fake tool may have changed (storage.cfg, CT configs, templates)
are only created when absent, so `sim up` on a folder that was `sim down`ed
resumes with its state; runtime files (registries.conf, latency_ms) are rewritten.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
from pathlib import Path

# State sub-folder -> path on the host, per kind. The launcher bind-mounts each one
# inside the host's private mount namespace.
MOUNTS: dict[str, list[tuple[str, str]]] = {
    "proxmox": [
        ("etc-pve", "/etc/pve"),
        ("vz", "/var/lib/vz"),
        ("lock", "/run/lock/lxc"),
        ("containers", "/etc/containers"),
        # Datasets for bind mounts (a ZFS pool `tank`, as on many home servers).
        ("tank", "/tank"),
        ("srv", "/srv"),
        # The host's network interfaces as the kernel shows them (PVE reads a bridge's
        # /sys/class/net/<bridge>/mtu), and its GPU nodes: both differ between hosts.
        ("sys-class-net", "/sys/class/net"),
        ("dev-dri", "/dev/dri"),
        # lxc-start's stderr per CT (pve-container src/pve-container@.service), sim/pve/ctlog.py
        ("run-pve", "/run/pve"),
    ],
    # /var/log holds the middleware's app_lifecycle.log (sim/truenas writes it there).
    "truenas": [("var-log", "/var/log")],
}
# Every kind gets these single files: name resolution that never leaves the machine
# (see sim/regproxy.py), and a plain root ~/.bashrc, because bash sources it for
# commands run by sshd and the machine's own may be slow (pyenv and the like).
ROOT_BASHRC = os.path.join(pwd.getpwnam("root").pw_dir, ".bashrc")
FILE_MOUNTS = [("files/hosts", "/etc/hosts"), ("files/resolv.conf", "/etc/resolv.conf"),
               ("files/root.bashrc", ROOT_BASHRC)]

BASHRC = """\
# ~/.bashrc of a simulated host (the machine's own is hidden here)
[ -z "$PS1" ] && return
export LS_OPTIONS='--color=auto'
"""


# A TrueNAS install logs in as its admin user, `truenas_admin` (uid 950 on a real NAS, in
# builtin_administrators), not root, as docs/truenas.md shows. The simulated NAS sees a passwd
# with that user as an alias of root's uid: sshd finds the account, and the simulated tools
# (which keep their state as root) run as they do for root. Only inside the NAS's mount namespace.
ADMIN_USER = "truenas_admin"
KIND_FILE_MOUNTS = {"truenas": [("files/passwd", "/etc/passwd")]}


def mounts(kind: str) -> list[tuple[str, str]]:
    """(state sub-path, host path) pairs to bind-mount; file targets must exist."""
    return MOUNTS[kind] + [(src, dst) for src, dst in FILE_MOUNTS + KIND_FILE_MOUNTS.get(kind, [])
                           if os.path.exists(dst)]


def passwd_with_admin(machine_passwd: str) -> str:
    """The machine's passwd plus the NAS admin user as a root alias (replacing one already there)."""
    root = pwd.getpwnam("root")
    lines = [line for line in machine_passwd.splitlines() if not line.startswith(ADMIN_USER + ":")]
    lines.append(f"{ADMIN_USER}:x:0:0:TrueNAS admin (simulated):{root.pw_dir}:{root.pw_shell}")
    return "\n".join(lines) + "\n"

# Registries every host rewrites to the local registry, besides those of seeded images.
MIRRORED_REGISTRIES = ["docker.io", "ghcr.io", "lscr.io", "quay.io", "gcr.io",
                       "registry.k8s.io", "codeberg.org"]

STORAGE_CFG = """\
dir: local
\tpath /var/lib/vz
\tcontent vztmpl,iso,backup,rootdir,images

zfspool: local-zfs
\tpool rpool/data
\tcontent rootdir,images
\tsparse 1
"""

DATACENTER_CFG = "keyboard: en-us\n"

# /etc/containers is bind-mounted over, which hides the machine's policy.json.
POLICY_JSON = {"default": [{"type": "insecureAcceptAnything"}]}


def registries_conf(registry_address: str, domains) -> str:
    out = ['unqualified-search-registries = ["docker.io"]', ""]
    for domain in domains:
        out += ["[[registry]]",
                f'prefix = "{domain}"',
                f'location = "{registry_address}/{domain}"',
                "insecure = true",
                ""]
    return "\n".join(out)


def hosts_file(name: str, proxy_address: str, domains) -> str:
    names = ["registry-1.docker.io", "index.docker.io"] + [
        d for d in domains if ":" not in d and d != "localhost"]
    return ("127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"127.0.1.1\t{name}.sim.internal {name}\n"
            f"{proxy_address}\t{' '.join(dict.fromkeys(names))}\n")


def resolv_conf(proxy_address: str) -> str:
    # Nothing answers DNS there: a lookup fails at once instead of leaving the machine.
    return f"nameserver {proxy_address}\noptions timeout:1 attempts:1\n"


def _write_if_absent(path: Path, text: str) -> None:
    if not path.exists():
        path.write_text(text)


def _write_if_absent_path(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_if_absent(path, text)


def _symlink_if_absent(link: Path, target: str) -> None:
    if not link.is_symlink() and not link.exists():
        link.symlink_to(target)


def prepare(state: Path, name: str, kind: str, registry_address: str, proxy_address: str,
            latency_ms: float, extra_domains=()) -> None:
    """Create or refresh the state folder of host `name`."""
    domains = list(dict.fromkeys([*MIRRORED_REGISTRIES, *extra_domains]))
    (state / "sim").mkdir(parents=True, exist_ok=True)
    (state / "ssh").mkdir(exist_ok=True)
    files = state / "files"
    files.mkdir(exist_ok=True)
    (files / "hosts").write_text(hosts_file(name, proxy_address, domains))
    (files / "resolv.conf").write_text(resolv_conf(proxy_address))
    _write_if_absent(files / "root.bashrc", BASHRC)
    if kind == "truenas":
        (files / "passwd").write_text(passwd_with_admin(Path("/etc/passwd").read_text()))
    (state / "latency_ms").write_text(f"{latency_ms:g}\n")
    (state / "commands.log").touch()
    for sub, _ in MOUNTS[kind]:
        (state / sub).mkdir(exist_ok=True)
    if kind == "proxmox":
        _prepare_pve(state, name)
    if any(sub == "containers" for sub, _ in MOUNTS[kind]):
        containers = state / "containers"
        (containers / "registries.conf").write_text(registries_conf(registry_address, domains))
        (containers / "policy.json").write_text(json.dumps(POLICY_JSON, indent=2) + "\n")


def _prepare_pve(state: Path, name: str) -> None:
    etc = state / "etc-pve"
    node = etc / "nodes" / name
    (node / "lxc").mkdir(parents=True, exist_ok=True)
    (node / "qemu-server").mkdir(exist_ok=True)
    # Relative, as on PVE, so they resolve both on the host and from outside.
    _symlink_if_absent(etc / "lxc", f"nodes/{name}/lxc")
    _symlink_if_absent(etc / "qemu-server", f"nodes/{name}/qemu-server")
    _symlink_if_absent(etc / "local", f"nodes/{name}")
    _write_if_absent(etc / "storage.cfg", STORAGE_CFG)
    _write_if_absent(etc / "datacenter.cfg", DATACENTER_CFG)
    for sub in ("template/cache", "template/iso", "dump", "images"):
        (state / "vz" / sub).mkdir(parents=True, exist_ok=True)
    # vmbr0, the bridge every PVE install has; more are added by tests (add_bridge)
    _write_if_absent_path(state / "sys-class-net" / "vmbr0" / "mtu", "1500\n")
    # an Intel iGPU: /dev/dri/card0 (226:0) and renderD128 (226:128), group video/render
    for name, minor in (("card0", 0), ("renderD128", 128)):
        node = state / "dev-dri" / name
        if not node.exists():
            node.parent.mkdir(parents=True, exist_ok=True)
            os.mknod(node, 0o660 | stat.S_IFCHR, os.makedev(226, minor))
    # /tank/media: a dataset root made by root (owner 0:0, mode 0755), with the user's files.
    # /srv/media the same (the benchmark's bind mount)
    for media in (state / "tank" / "media", state / "srv" / "media"):
        if not media.exists():
            media.mkdir(parents=True)
            (media / "README.txt").write_text("the user's media library\n")


def ensure_mount_points(kind: str) -> None:
    """Create the machine's mount points, empty, where they do not exist yet."""
    for _, target in MOUNTS[kind]:
        Path(target).mkdir(parents=True, exist_ok=True)
