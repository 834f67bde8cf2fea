"""`pveversion [-v|--verbose]`: a PVE 9.1.1 host with pve-container 6.1.10.

A test can give one simulated host another pve-container version by writing it to
`$SIM_STATE/pve-container-version`; the behaviours that changed between versions
(`keepattrs`, see entrypoint.py) follow it.
"""

from __future__ import annotations

import re
import sys

from . import paths

CONTAINER = "6.1.10"


def container_version_text() -> str:
    try:
        text = (paths.state_dir() / "pve-container-version").read_text().strip()
    except OSError:
        text = ""
    return text or CONTAINER


def container_version() -> tuple[int, ...]:
    """pve-container's version on this host as numbers: (6, 1, 10)."""
    return tuple(int(p) for p in re.findall(r"\d+", container_version_text().split("~")[0])[:3])

KERNEL = "6.17.2-1-pve"
MANAGER = "9.1.1"
MANAGER_HASH = "42db4a6cf33dac83"

PACKAGES = [
    ("proxmox-ve", f"9.1.0 (running kernel: {KERNEL})"),
    ("pve-manager", f"{MANAGER} (running version: {MANAGER}/{MANAGER_HASH})"),
    ("proxmox-kernel-helper", "9.0.4"),
    (f"proxmox-kernel-{KERNEL}-signed", KERNEL),
    ("ceph-fuse", "19.2.3-pve2"),
    ("corosync", "3.1.9-pve2"),
    ("criu", "4.1.1-1"),
    ("ifupdown2", "3.3.0-1+pmx11"),
    ("libjs-extjs", "7.0.0-5"),
    ("libproxmox-acme-perl", "1.7.0"),
    ("libproxmox-backup-qemu0", "2.0.1"),
    ("libproxmox-rs-perl", "0.4.1"),
    ("libpve-access-control", "9.0.4"),
    ("libpve-apiclient-perl", "3.4.2"),
    ("libpve-cluster-api-perl", "9.0.7"),
    ("libpve-cluster-perl", "9.0.7"),
    ("libpve-common-perl", "9.0.15"),
    ("libpve-guest-common-perl", "6.0.2"),
    ("libpve-http-server-perl", "6.0.5"),
    ("libpve-network-perl", "1.2.3"),
    ("libpve-rs-perl", "0.11.3"),
    ("libpve-storage-perl", "9.1.7"),
    ("lxc-pve", "6.0.5-3"),
    ("lxcfs", "6.0.4-pve1"),
    ("proxmox-backup-client", "4.0.20-1"),
    ("proxmox-firewall", "1.2.1"),
    ("proxmox-widget-toolkit", "5.1.2"),
    ("pve-cluster", "9.0.7"),
    ("pve-container", "6.1.10"),
    ("pve-docs", "9.1.3"),
    ("pve-firewall", "6.0.4"),
    ("pve-ha-manager", "5.0.8"),
    ("pve-i18n", "3.6.2"),
    ("pve-qemu-kvm", "10.1.2-4"),
    ("qemu-server", "9.1.0"),
    ("skopeo", "1.9.3+ds1-1+b8"),
    ("smartmontools", "7.4-pve1"),
    ("zfsutils-linux", "2.3.4-pve1"),
]


def main(argv: list[str]) -> int:
    verbose = False
    for arg in argv:
        if arg in ("-v", "--verbose", "-verbose"):
            verbose = True
        elif arg in ("-h", "--help"):
            sys.stdout.write("USAGE: pveversion [--verbose]\n")
            return 0
        else:
            sys.stderr.write(f"Unknown option: {arg.lstrip('-')}\n400 unable to parse option\n"
                             "pveversion  [OPTIONS]\n")
            return 255
    if verbose:
        for name, version in PACKAGES:
            if name == "pve-container":
                version = container_version_text()
            sys.stdout.write(f"{name}: {version}\n")
    else:
        sys.stdout.write(f"pve-manager/{MANAGER}/{MANAGER_HASH} (running kernel: {KERNEL})\n")
    return 0
