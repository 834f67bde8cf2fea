"""One gate for every compose key that reaches the host, on Proxmox and TrueNAS alike (issue 18.5).

A compose file comes from anywhere. Keys that hand the app the host itself — a disk or memory
device, a bind of `/` or of a system folder, the host's PID namespace, Docker's API socket,
another container's volumes, full privileges — are refused unless the app opts in with
`allowSystemPaths: true` (the one opt-in for all of them; then each is a warning). Every message
names the key and the opt-in. What one kind of host cannot run at all (e.g. the Docker socket on
Proxmox) is refused there by its own rules, whatever the opt-in says.
"""

from __future__ import annotations

import posixpath
import re

OPT_IN = "allowSystemPaths"

# Device nodes apps ask for in normal use: GPUs, serial/USB adapters, sound, video capture, input,
# TUN and FUSE, accelerators. Anything else (a disk, /dev/mem, a whole /dev) reaches the host.
APP_DEVICES = re.compile(
    r"^/dev/(dri(/(card|renderD)\d+)?|tty(USB|ACM|S|AMA)\d+|serial/by-(id|path)/[^/]+|bus/usb(/\d+(/\d+)?)?|"
    r"snd(/.*)?|video\d+|media\d+|input(/event\d+)?|hidraw\d+|net/tun|fuse|nvidia(\d+|ctl|-uvm|-uvm-tools|-modeset|"
    r"-caps(/.*)?)?|kfd|apex_\d+|accel(/accel\d+)?|dvb(/.*)?|usb/hiddev\d+|ttyUSB\d+|gpiochip\d+|i2c-\d+|"
    r"hailo\d+|vchiq|vcsm-cma|dma_heap(/.*)?)$")

# Host folders a bind mount must not expose without the opt-in (both kinds of host).
SYSTEM = ("/etc", "/root", "/boot", "/proc", "/sys", "/dev", "/run", "/var/run", "/usr", "/bin", "/sbin",
          "/lib", "/lib64", "/var/lib/pve-cluster", "/var/lib/lxc", "/var/lib/vz", "/var/lib/docker", "/var/log")
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
CLOCK_FILES = ("/etc/localtime", "/etc/timezone")  # read-only, public: no opt-in needed
ALWAYS_PRIVILEGED_CAPS = {"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "DAC_READ_SEARCH"}


def system_path(path: str) -> bool:
    norm = posixpath.normpath(path) if path.startswith("/") else path
    return norm == "/" or any(norm == p or norm.startswith(p + "/") for p in SYSTEM)


def findings(compose, bind_sources: bool = True, docker_sockets: bool = True) -> list:
    """[(where, what it does)] for every host-access key of the file.

    `bind_sources`: also judge bind mount sources (TrueNAS judges them with its pool rules).
    `docker_sockets`: report a bind of Docker's socket here (Proxmox refuses it by its own rule)."""
    out = []
    skip_sockets = () if docker_sockets else DOCKER_SOCKETS
    for service in compose.services.values():
        where = service.where
        for device in service.devices:
            if not APP_DEVICES.match(device.source.rstrip("/")):
                out.append((device.where, f"passes the host device {device.source} into the app (a disk, memory or "
                                          "a device tree gives the app the host's data)"))
        if bind_sources:
            for mount in service.volumes:
                if mount.type == "bind" and mount.source and system_path(mount.source) \
                        and posixpath.normpath(mount.source) not in skip_sockets \
                        and not (posixpath.normpath(mount.source) in CLOCK_FILES and mount.read_only):
                    out.append((mount.where, f"bind-mounts the host's {posixpath.normpath(mount.source)}"))
        options = service.options
        if options.get("privileged") is True:
            out.append((f"{where}.privileged", "gives the container every privilege on the host"))
        for key in ("pid", "ipc", "uts", "userns_mode", "cgroup"):
            if options.get(key) == "host":
                out.append((f"{where}.{key}", f"shares the host's {key} namespace"))
        if options.get("use_api_socket") is True:
            out.append((f"{where}.use_api_socket", "gives the app Docker's API socket (control of every container)"))
        if options.get("volumes_from"):
            out.append((f"{where}.volumes_from", "mounts the volumes of other containers"))
        caps = {str(c).upper().removeprefix("CAP_") for c in (options.get("cap_add") or [])
                if isinstance(options.get("cap_add"), list)}
        for cap in sorted(caps & ALWAYS_PRIVILEGED_CAPS):
            out.append((f"{where}.cap_add", f"adds the capability {cap}, which reaches past the container"))
    for name, spec in compose.volumes.items():
        device = (spec.get("driver_opts") or {}).get("device")
        if isinstance(device, str) and (device.startswith("/dev/") or (bind_sources and system_path(device))):
            out.append((f"volumes.{name}.driver_opts.device", f"binds the host's {device} as a volume"))
    return out


def gate(compose, allowed: bool, app_key: str, fail, warn, bind_sources: bool = True, refused_anyway=(),
         docker_sockets: bool = True) -> None:
    """Refuse (or, opted in, warn about) every finding; `fail`/`warn` take (where, message, fix).

    `refused_anyway`: service keys this kind of host refuses by its own rules (not reported twice)."""
    for where, what in findings(compose, bind_sources, docker_sockets):
        if where.startswith("services.") and where.split(".")[2].split("[")[0] in refused_anyway:
            continue
        if allowed:
            warn(where, f"{what}; allowed by {OPT_IN}")
        else:
            fail(where, f"{what}, which reaches the host",
                 f"Remove it, or set {OPT_IN}: true on {app_key} if the app really needs it")
