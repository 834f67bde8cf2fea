"""What each compose service key means on a Proxmox CT: one entry (or one small rule) per key.

`HARD`: refused with a reason and a fix. `SOFT`: refused unless the service waives it with
`x-homefleet: {ignore: [key]}`. `WARN`: no effect on Proxmox, said in the preview. `NO_EFFECT`:
nothing to do. `BY_VALUE`: decided by the value (`KeyRules` below, and proxmox_sizes.py).
"""

from __future__ import annotations

from . import proxmox_network as network_mode
from . import users
from .model import Service

_IGNORE_FIX = "Remove it, or add `x-homefleet: {{ignore: [{key}]}}` to the service to deploy the service without it"
_GENERIC = "is not supported on Proxmox: an LXC container has no equivalent"

# key -> (message, fix): refused outright.
HARD = {
    "privileged": ("privileged containers cannot run OCI images on Proxmox (PVE refuses to create them: "
                   "`unable to create CT - Invalid argument`)",
                   "Remove privileged:; list the devices the app needs under devices:"),
    "volumes_from": ("mounts another container's volumes, which a Proxmox CT cannot do",
                     "Bind-mount the same absolute host path in both services"),
    "external_links": ("links to containers outside the file cannot be made on Proxmox",
                       "Remove external_links: and use the other app's address"),
    "gpus": ("GPU reservations are Docker-specific",
             "List the GPU device nodes under devices: (e.g. /dev/dri/renderD128 or /dev/nvidia0)"),
    "device_cgroup_rules": ("device cgroup rules are Docker-specific", "List the devices under devices:"),
    "userns_mode": (_GENERIC, "Remove it"),
    "uts": (_GENERIC, "Remove it"),
    "cgroup": (_GENERIC, "Remove it"),
    "cgroup_parent": (_GENERIC, "Remove it"),
    "isolation": (_GENERIC, "Remove it"),
    "runtime": (_GENERIC, "Remove it"),
    "storage_opt": (_GENERIC, "Remove it; size the CT's disk with x-homefleet: {disk: GiB}"),
    "credential_spec": (_GENERIC, "Remove it"),
    "models": (_GENERIC, "Remove it"),
    "provider": (_GENERIC, "Remove it"),
    "use_api_socket": ("gives the container Docker's API socket; there is no Docker on a Proxmox host", "Remove it"),
}

# key -> message: an error unless the service lists the key under x-homefleet.ignore.
SOFT = {
    "user": "is {value}, which is not user[:group] (a name or number each, as Docker reads it)",
    "cap_add": "adds the capabilities {value}, which homefleet cannot grant to a Proxmox CT",
    "group_add": "adds supplementary groups ({value}), which homefleet cannot set on a Proxmox CT",
    "post_start": "runs lifecycle hooks, which a Proxmox CT does not have",
    "pre_stop": "runs lifecycle hooks, which a Proxmox CT does not have",
    "platform": "asks for the platform {value}; PVE takes the image for the host's own platform",
}

# key -> message: no effect on Proxmox, shown as a warning ("{value}": the value). Hardening a Docker
# host applies and a CT cannot (read_only, security_opt, pids_limit, tmpfs...) is not worth refusing an
# upstream file for: the service runs, without that restriction, and the preview says so.
WARN = {
    "security_opt": "is not applied: the service runs without these security options ({value}) in its unprivileged CT",
    "sysctls": "is not applied: the CT keeps its kernel parameters ({value})",
    "ulimits": "is not applied: the CT keeps PVE's resource limits ({value})",
    "read_only": "is not applied: the CT's root filesystem stays writable",
    "mac_address": "is ignored: PVE gives each CT its own MAC address",
    "dns": "is ignored: an app container uses the resolver its image (or the host) sets up ({value})",
    "dns_search": "is ignored: an app container uses the resolver its image (or the host) sets up ({value})",
    "dns_opt": "is ignored: an app container uses the resolver its image (or the host) sets up ({value})",
    "domainname": "is ignored: PVE does not set a domain name inside an app container",
    "tmpfs": "is not a tmpfs on Proxmox: {value} stays on the CT's root filesystem",
    "oom_kill_disable": "is not applied on a Proxmox CT",
    "oom_score_adj": "is not applied on a Proxmox CT",
    "pids_limit": "is not applied: the CT has no process limit of its own",
    "cpuset": "is not applied: the CT's cores are not pinned ({value})",
    "stop_signal": "is not applied: PVE stops an app container with the image's STOPSIGNAL ({value})",
    "cap_drop": "is not applied: the CT keeps the capabilities {value} (within its own namespaces)",
    "init": "is accepted: PVE starts the entrypoint itself as PID 1 (there is no tini), so reaping zombie "
            "processes and passing on signals are up to the app",
    "shm_size": "is ignored: PVE gives an app container a /dev/shm of its default size",
    "stop_grace_period": "is ignored: PVE waits up to 60 s when homefleet shuts a CT down",
    "logging": "is ignored: an app container's output goes to PVE's console log",
    "tty": "is ignored: PVE runs an app container's entrypoint on its console",
    "stdin_open": "is ignored: PVE runs an app container's entrypoint on its console",
    "mem_reservation": "is ignored: a Proxmox CT has one memory limit (x-homefleet: {memory: MiB})",
    "mem_swappiness": "is ignored on Proxmox",
    "cpu_count": "is ignored: set the CT's cores with cpus: or x-homefleet: {cores: N}",
    "cpu_percent": "is ignored: set the CT's cores with cpus: or x-homefleet: {cores: N}",
    "cpu_shares": "is ignored: set the CT's cores with cpus: or x-homefleet: {cores: N}",
    "cpu_period": "is ignored: set the CT's cores with cpus: or x-homefleet: {cores: N}",
    "cpu_quota": "is ignored: set the CT's cores with cpus: or x-homefleet: {cores: N}",
    "cpu_rt_period": "is ignored on Proxmox",
    "cpu_rt_runtime": "is ignored on Proxmox",
    "blkio_config": "is ignored on Proxmox",
}
# No effect on a Proxmox CT, and none needed: the CT has its own address (expose), labels are metadata.
NO_EFFECT = {"labels", "label_file", "annotations", "expose", "attach", "develop", "pull_policy", "pull_refresh_after"}
# Mapped, or refused depending on the value (see _features, _deploy and _limits).
BY_VALUE = {"cpus", "mem_limit", "memswap_limit", "deploy", "network_mode", "ipc", "pid", "scale",
            "links", "extra_hosts", "secrets", "configs"}


class KeyRules:
    """Mixed into the Proxmox converter (which provides fail/warn and app_name)."""

    def _features(self, service: Service, ignore: set) -> None:
        options = service.options
        for key, value in options.items():
            at = f"{service.where}.{key}"
            if key in HARD:
                if key in ("privileged", "use_api_socket") and value is not True:
                    continue
                message, fix = HARD[key]
                self.fail(at, message, fix.replace("{app}", self.app_name))
            elif key == "cap_add" and _namespaced(value):
                self.warn(at, f"is accepted: root in an unprivileged CT already holds {_show(value)} for the CT's own "
                          "namespaces (not the host's); the app must run as root, and a TUN device needs "
                          "devices: [/dev/net/tun]")
            elif key == "cap_add" and isinstance(value, list) and not _host_wide(value):
                held = [c for c in _caps(value) if c in NAMESPACED_CAPS]
                missing = [c for c in _caps(value) if c not in NAMESPACED_CAPS]
                self.warn(at, f"grants {', '.join(held) or 'nothing'}; {', '.join(missing)} act on the host, which an "
                          "unprivileged CT cannot do, so what the app does with them fails (often an optional feature, "
                          "e.g. setting the clock)")
            elif key in SOFT:
                if value in (False, None, [], {}) and key in ("read_only", "oom_kill_disable"):
                    continue
                if key == "platform" and str(value) in ("linux/amd64", "amd64"):
                    continue
                if key not in ignore:
                    self.fail(at, SOFT[key].format(value=_show(value)), _IGNORE_FIX.format(key=key))
                else:
                    self.warn(at, "is ignored (x-homefleet.ignore)")
            elif key in WARN:
                if value in (False, None, [], {}):
                    continue
                self.warn(at, WARN[key].replace("{value}", _show(value)))
        if service.working_dir is not None and "working_dir" in ignore:
            self.warn(f"{service.where}.working_dir", "is ignored (x-homefleet.ignore): the CT starts in the image's "
                      "WorkingDir")
        elif service.working_dir is not None:
            if init_cwd(service.working_dir) is None:
                self.fail(f"{service.where}.working_dir", f"{_show(service.working_dir)!r} is not an absolute path on "
                          "one line, which PVE's lxc.init.cwd needs", "Write an absolute path, e.g. /app")
            else:
                self.warn(f"{service.where}.working_dir", "is the CT's lxc.init.cwd: the folder must exist in the image "
                          "(Docker creates it; LXC fails the start without it)")
        for key in ("user",):
            value = getattr(service, key)
            if key == "user" and value is not None and init_user(value) is not None:
                continue  # mapped: lxc.init.uid/gid (proxmox.py)
            if key == "user" and value is not None and key not in ignore \
                    and users.named(value, "", service.image) is not None:
                continue  # a name: resolved from the image's /etc/passwd once the template is pulled (users.py)
            if value is not None:
                if key not in ignore:
                    self.fail(f"{service.where}.{key}", SOFT[key].format(value=_show(value)),
                              _IGNORE_FIX.format(key=key))
                else:
                    self.warn(f"{service.where}.{key}", "is ignored (x-homefleet.ignore)")
        network_mode.check(service, self.compose.services, self.fail, self.warn)
        for key in ("ipc", "pid"):
            value = options.get(key)
            if value is not None and not (key == "ipc" and value in ("private", "shareable", "none")):
                space = "an IPC" if key == "ipc" else "a PID"
                self.fail(f"{service.where}.{key}", f"shares {space} namespace ({key}: {value}), which separate "
                          "Proxmox CTs cannot do", f"Remove {key}:, or run these processes in one service")
        scale = options.get("scale")
        if scale not in (None, 1):
            self.fail(f"{service.where}.scale", f"runs {scale} copies; a Proxmox CT is one copy",
                      "Remove scale: or set it to 1")
        self._deploy(service)
        if service.healthcheck and not _healthcheck_disabled(service.healthcheck):
            self.warn(f"{service.where}.healthcheck", "is run inside the CT with `pct exec` after each create, start "
                      "and upgrade; the `up` fails when it does not pass within the app's healthTimeout",
                      "Make sure its commands exist in the image")
        if service.restart in ("always", "unless-stopped") or (service.restart or "").startswith("on-failure"):
            self.warn(f"{service.where}.restart", "Proxmox starts the CT when the host boots (onboot) but does not "
                      "restart the app if it exits")

    def _deploy(self, service: Service) -> None:
        deploy = service.options.get("deploy")
        if not isinstance(deploy, dict):
            return
        at = f"{service.where}.deploy"
        for key, value in deploy.items():
            if key == "resources" and isinstance(value, dict):
                for part, body in value.items():
                    if part == "limits" and isinstance(body, dict):
                        for limit in body:
                            if limit not in ("cpus", "memory"):
                                self.warn(f"{at}.resources.limits.{limit}", "is ignored on Proxmox")
                    elif part == "reservations" and isinstance(body, dict) and body.get("devices"):
                        self.fail(f"{at}.resources.reservations.devices", HARD["gpus"][0], HARD["gpus"][1])
                    else:
                        self.warn(f"{at}.resources.{part}", "is ignored: a Proxmox CT has one limit per resource")
            elif key == "replicas" and value not in (None, 1):
                self.fail(f"{at}.replicas", f"runs {value} copies; a Proxmox CT is one copy",
                          "Remove replicas: or set it to 1")
            elif key == "restart_policy":
                self.warn(f"{at}.restart_policy", "Proxmox starts the CT when the host boots (onboot) but does not "
                          "restart the app if it exits")
            elif key != "replicas":
                self.warn(f"{at}.{key}", "is ignored on Proxmox")


# Capabilities that act on the CT's own namespaces, which root in an unprivileged CT already has
# (user_namespaces(7)): cap_add of these changes nothing and is accepted with a note.
NAMESPACED_CAPS = {"NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                   "SETGID", "SETUID", "SETPCAP", "SYS_CHROOT", "AUDIT_WRITE", "MKNOD", "SETFCAP", "SYS_NICE",
                   "SYS_RESOURCE", "IPC_LOCK", "IPC_OWNER", "NET_BROADCAST", "LEASE"}


def init_user(value) -> "dict | None":
    """`user:` as PVE's lxc.init.uid/gid: numeric `uid[:gid]`, or root; None for a name PVE would have to
    look up in the image's /etc/passwd. Without a gid, 0 (Docker's gid for a uid the image does not name)."""
    text = str(value).strip()
    if text == ":":  # `user: "${PUID}:${PGID}"` with both unset (the reader warns): Docker runs it as root
        return {"uid": 0, "gid": 0}
    uid_text, _, gid_text = text.partition(":")
    names = {"root": "0"}
    uid_text, gid_text = names.get(uid_text, uid_text), names.get(gid_text, gid_text)
    if not uid_text.isdigit() or (gid_text and not gid_text.isdigit()):
        return None
    return {"uid": int(uid_text), "gid": int(gid_text or 0)}


def init_cwd(value) -> "str | None":
    """`working_dir:` as PVE's lxc.init.cwd (Create.pm writes it from the image's WorkingDir), or None when PVE's
    config line cannot hold it (relative, or a control character)."""
    text = str(value)
    if not text.startswith("/") or any(ord(c) < 0x20 or ord(c) == 0x7f for c in text):
        return None
    return text


def _caps(value) -> list:
    return [str(c).upper().removeprefix("CAP_") for c in value] if isinstance(value, list) else []


def _namespaced(value) -> bool:
    caps = _caps(value)
    return bool(caps) and all(c in NAMESPACED_CAPS for c in caps)


def _host_wide(value) -> bool:
    """Capabilities that amount to the host itself (or ALL): refused, waivable with x-homefleet.ignore."""
    return any(c in ("ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "DAC_READ_SEARCH", "BPF",
                     "PERFMON", "SYS_BOOT", "MAC_ADMIN", "MAC_OVERRIDE") for c in _caps(value))


def _healthcheck_disabled(check: dict) -> bool:
    test = check.get("test")
    return check.get("disable") is True or test == ["NONE"] or test == "NONE"


def _show(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
