"""The container config schema (`$confdesc` of pve-container `src/PVE/LXC/Config.pm`)."""

from __future__ import annotations

import re

from .schema import Prop

MAX_MOUNT_POINTS = 256
MAX_UNUSED = 256
MAX_DEVICES = 256
MAX_NETS = 32

MOUNT_OPTION_RE = r"(?:discard|lazytime|noatime|nodev|noexec|nosuid)"

OSTYPES = ["debian", "devuan", "ubuntu", "centos", "fedora", "opensuse", "archlinux",
           "alpine", "gentoo", "nixos", "unmanaged"]
LOCKS = ["backup", "create", "destroyed", "disk", "fstrim", "migrate", "mounted",
         "rollback", "snapshot", "snapshot-delete"]

ROOTFS_DESC: dict[str, Prop] = {
    "volume": Prop(optional=False, default_key=True, format="pve-lxc-mp-string"),
    "size": Prop(format="disk-size"),
    "acl": Prop(type="boolean"),
    "mountoptions": Prop(pattern=rf"{MOUNT_OPTION_RE}(?:;{MOUNT_OPTION_RE})*"),
    "ro": Prop(type="boolean"),
    "quota": Prop(type="boolean"),
    "replicate": Prop(type="boolean"),
    "shared": Prop(type="boolean"),
}

MP_DESC: dict[str, Prop] = {
    **ROOTFS_DESC,
    "backup": Prop(type="boolean"),
    "keepattrs": Prop(type="boolean"),
    "mp": Prop(optional=False, format="pve-lxc-mp-string"),
}

UNUSED_DESC: dict[str, Prop] = {
    "volume": Prop(optional=False, default_key=True, format="pve-volume-id"),
}

NET_DESC: dict[str, Prop] = {
    "type": Prop(enum=["veth"]),
    "name": Prop(optional=False, pattern=r"[-_.\w\d]+"),
    "bridge": Prop(pattern=r"[-_.\w\d]+"),
    "hwaddr": Prop(format="mac-addr"),
    "mtu": Prop(type="integer", minimum=64, maximum=65535),
    "ip": Prop(format="pve-ipv4-config"),
    "gw": Prop(format="ipv4"),
    "ip6": Prop(format="pve-ipv6-config"),
    "gw6": Prop(format="ipv6"),
    "firewall": Prop(type="boolean"),
    "tag": Prop(type="integer", minimum=1, maximum=4094),
    "trunks": Prop(pattern=r"\d+(?:;\d+)*"),
    "rate": Prop(type="number"),
    "link_down": Prop(type="boolean"),
    "host-managed": Prop(type="boolean"),
}

DEV_DESC: dict[str, Prop] = {
    "path": Prop(default_key=True, format="pve-lxc-dev-string"),
    "mode": Prop(pattern=r"0[0-7]{3}"),
    "uid": Prop(type="integer", minimum=0),
    "gid": Prop(type="integer", minimum=0),
    "deny-write": Prop(type="boolean"),
}

FEATURES_DESC: dict[str, Prop] = {
    "mount": Prop(pattern=r"[a-zA-Z0-9_; ]+"),
    "nesting": Prop(type="boolean"),
    "keyctl": Prop(type="boolean"),
    "fuse": Prop(type="boolean"),
    "mknod": Prop(type="boolean"),
    "force_rw_sys": Prop(type="boolean"),
}

# No control characters except TAB (pve-container 6.0.18/6.1.8).
NO_CONTROL_RE = r"[^\x00-\x08\x0a-\x1f\x7f]*"

CONFDESC: dict[str, Prop] = {
    "lock": Prop(enum=LOCKS),
    "onboot": Prop(type="boolean"),
    "startup": Prop(format="pve-startup-order"),
    "template": Prop(type="boolean"),
    "arch": Prop(enum=["amd64", "i386", "arm64", "armhf", "riscv32", "riscv64"]),
    "ostype": Prop(enum=OSTYPES),
    "console": Prop(type="boolean"),
    "tty": Prop(type="integer", minimum=0, maximum=6),
    "cores": Prop(type="integer", minimum=1, maximum=8192),
    "cpulimit": Prop(type="number", minimum=0, maximum=8192),
    "cpuunits": Prop(type="integer", minimum=0, maximum=500000),
    "memory": Prop(type="integer", minimum=16),
    "swap": Prop(type="integer", minimum=0),
    "hostname": Prop(format="dns-name", max_length=255),
    "description": Prop(max_length=8192),
    "searchdomain": Prop(format="dns-name-list"),
    "nameserver": Prop(format="lxc-ip-with-ll-iface-list"),
    "timezone": Prop(format="pve-ct-timezone"),
    "rootfs": Prop(format=ROOTFS_DESC),
    "cmode": Prop(enum=["shell", "console", "tty"]),
    "entrypoint": Prop(pattern=NO_CONTROL_RE),
    "env": Prop(format="pve-lxc-env"),
    "protection": Prop(type="boolean"),
    "unprivileged": Prop(type="boolean"),
    "features": Prop(format=FEATURES_DESC),
    "hookscript": Prop(format="pve-volume-id"),
    "tags": Prop(format="pve-tag-list"),
    "debug": Prop(type="boolean"),
}
for _i in range(MAX_NETS):
    CONFDESC[f"net{_i}"] = Prop(format=NET_DESC)
for _i in range(MAX_MOUNT_POINTS):
    CONFDESC[f"mp{_i}"] = Prop(format=MP_DESC)
for _i in range(MAX_UNUSED):
    CONFDESC[f"unused{_i}"] = Prop(format=UNUSED_DESC)
for _i in range(MAX_DEVICES):
    CONFDESC[f"dev{_i}"] = Prop(format=DEV_DESC)

FASTPLUG = {"description", "onboot", "startup", "protection", "hostname", "hookscript",
            "cores", "tags", "lock"}
HOT_DELETABLE_RE = re.compile(r"swap|cpulimit|cpuunits|net\d+|unused\d+")

VMID_PROP = Prop(type="integer", optional=False, format="pve-vmid",
                 minimum=100, maximum=999_999_999)


def option_exists(name: str) -> bool:
    return name in CONFDESC


def is_volume_key(key: str) -> bool:
    return key == "rootfs" or re.fullmatch(r"mp\d+", key) is not None


def mp_desc_for(key: str) -> dict[str, Prop]:
    if key == "rootfs":
        return ROOTFS_DESC
    if key.startswith("unused"):
        return UNUSED_DESC
    return MP_DESC


def classify_mountpoint(volume: str) -> str:
    if volume.startswith("/"):
        return "device" if volume.startswith("/dev/") else "bind"
    return "volume"
