"""OS detection in a rootfs (pve-container `LXC/Setup.pm`) and classic template rootfs."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

from .errors import PveError

PLUGINS = {"debian", "devuan", "ubuntu", "centos", "fedora", "opensuse", "archlinux",
           "alpine", "gentoo", "nixos"}
ALIASES = {"arch": "archlinux", "sles": "opensuse", "opensuse-leap": "opensuse",
           "opensuse-tumbleweed": "opensuse", "almalinux": "centos", "rocky": "centos",
           "rhel": "centos", "openeuler": "centos"}
FALLBACK_FILES = [
    ("etc/debian_version", "debian"), ("etc/devuan_version", "devuan"),
    ("etc/SuSE-brand", "opensuse"), ("etc/SuSE-release", "opensuse"),
    ("etc/fedora-release", "fedora"), ("etc/centos-release", "centos"),
    ("etc/redhat-release", "centos"), ("etc/arch-release", "archlinux"),
    ("etc/alpine-release", "alpine"), ("etc/gentoo-release", "gentoo"),
]


def parse_os_release(text: str) -> dict[str, str]:
    res: dict[str, str] = {}
    for line in text.splitlines():
        m = re.fullmatch(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)=(.*)", line)
        if not m:
            continue
        var, content = m.group(1), m.group(2).strip()
        if mm := re.match(r"'([^']*)'", content):
            res[var] = mm.group(1)
        elif mm := re.match(r'"((?:[^"\\]|\\.)*)"', content):
            res[var] = re.sub(r"\\([\"'`nt$\\])", r"\1", mm.group(1))
        elif mm := re.match(r"([A-Za-z0-9]*)", content):
            res[var] = mm.group(1)
    return res


def read_os_release(rootfs: Path) -> dict[str, str] | None:
    for rel in ("etc/os-release", "usr/lib/os-release"):
        path = rootfs / rel
        if path.is_file():
            return parse_os_release(path.read_text(errors="replace"))
    return None


def detect_ostype(rootfs: Path, warn) -> str:
    """The ostype for `rootfs`; 'unmanaged' (with a warning) when there is no os-release."""
    os_release = read_os_release(rootfs)
    if os_release is None:
        warn("no /etc/os-release found in the container - assuming 'unmanaged'")
        return "unmanaged"
    ident = os_release.get("ID", "")
    if ident in PLUGINS:
        return ident
    if ident in ALIASES:
        return ALIASES[ident]
    lsb = rootfs / "etc" / "lsb-release"
    if lsb.is_file() and re.search(r"(?im)^DISTRIB_ID=Ubuntu$", lsb.read_text(errors="replace")):
        return "ubuntu"
    for rel, ostype in FALLBACK_FILES:
        if (rootfs / rel).is_file():
            return ostype
    raise PveError("unable to detect OS distribution")


# --- classic (non-OCI) templates --------------------------------------------------------------

def template_os(name: str) -> tuple[str, str]:
    """`debian-12-standard_12.7-1_amd64.tar.zst` -> ('debian', '12')."""
    m = re.match(r"([a-z]+)(?:-([0-9][0-9.]*))?", name)
    if not m:
        return name.split(".")[0], ""
    ident = {"rockylinux": "rocky", "archlinux": "arch"}.get(m.group(1), m.group(1))
    return ident, m.group(2) or ""


def populate_classic_rootfs(template: Path, rootfs: Path) -> None:
    """Unpack what we can of a classic template and make sure an os-release is present."""
    try:
        with tarfile.open(template, "r:*") as tar:
            tar.extractall(rootfs, filter="tar")
    except (tarfile.TarError, OSError, ValueError):
        pass  # the simulated template cache holds small fake archives
    for sub in ("etc", "bin", "sbin", "root", "tmp", "var/log"):
        (rootfs / sub).mkdir(parents=True, exist_ok=True)
    os_release = rootfs / "etc" / "os-release"
    if not os_release.exists():
        ident, version = template_os(template.name)
        os_release.write_text(f'ID={ident}\nVERSION_ID="{version}"\n'
                              f'PRETTY_NAME="{ident} {version} (simulated)"\n')
    init = rootfs / "sbin" / "init"
    if not init.exists() and not init.is_symlink():
        init.write_text("#!/bin/sh\n# simulated init\n")
        init.chmod(0o755)
