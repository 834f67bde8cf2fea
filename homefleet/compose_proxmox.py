"""A compose app on a Proxmox host: one ProxmoxCT spec per service (see docs/compose.md).

Named volumes become storage-backed volumes, absolute bind paths bind mounts, devices `devN`
entries, published ports URLs. Each CT is named after its service (its hostname) and gets a
static address from the host's `composeNetwork`; service names used as hosts in environment
values and command lines are replaced by those addresses (compose_names.py). `depends_on`
becomes creation order (Pulumi dependencies) and PVE's boot order.

What a Proxmox CT cannot do is never dropped silently: it is a located error (`HARD`, and
checks by value), an error the service may waive with `x-homefleet: {ignore: [key]}` (`SOFT`), or a
warning shown in the preview (`WARN`, and approximations such as health checks).
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from typing import Optional

from .compose import ComposeFile, Service, start_order
from .compose_names import rewrite_argv, rewrite_value
from .compose_vars import SecretText
from .errors import located
from .image_needs import empty_dir_warning
from .sizes import to_gib, to_mib

FALLBACK = {"cores": 1, "memory": 512, "swap": 512, "disk": 4}
DEFAULT_VOLUME_GIB = 8
DRI_DEVICES = ("/dev/dri/card0", "/dev/dri/renderD128")
NON_HTTP_PORTS = {21, 22, 25, 53, 110, 143, 389, 465, 587, 636, 993, 995, 1883, 3306, 5432, 5672,
                  6379, 8883, 9092, 11211, 27017}
_ENV_KEY = re.compile(r"^\w+$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_IGNORE_FIX = "Remove it, or add `x-homefleet: {{ignore: [{key}]}}` to the service to deploy the service without it"
_GENERIC = "is not supported on Proxmox: an LXC container has no equivalent"

# key -> (message, fix): refused outright.
HARD = {
    "privileged": ("privileged containers cannot run OCI images on Proxmox (PVE refuses to create them: "
                   "`unable to create CT - Invalid argument`)",
                   "Remove privileged:; list the devices the app needs under devices:"),
    "volumes_from": ("mounts another container's volumes, which a Proxmox CT cannot do",
                     "Bind-mount the same absolute host path in both services"),
    "links": ("links are a legacy Docker feature a Proxmox CT cannot use",
              "Remove links:; services reach each other by name, and depends_on: orders them"),
    "external_links": ("links to containers outside the file cannot be made on Proxmox",
                       "Remove external_links: and use the other app's address"),
    "secrets": ("file-based secrets are not supported on Proxmox",
                "Pass the value through environment: as ${VAR} and set VAR as a secret: "
                "pulumi config set --secret --path 'homefleet:secrets.{app}.VAR' <value>"),
    "configs": ("config files are not supported on Proxmox",
                "Bind-mount the folder holding the file from an absolute host path"),
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
    "user": "runs the service as {value}, which homefleet cannot set on a Proxmox CT (it runs as the image's USER)",
    "working_dir": "sets the working directory to {value}, which homefleet cannot set on a Proxmox CT "
                   "(it starts in the image's WORKDIR)",
    "cap_add": "adds the capabilities {value}, which homefleet cannot grant to a Proxmox CT",
    "cap_drop": "drops the capabilities {value}, which homefleet cannot do on a Proxmox CT (the app would keep them)",
    "security_opt": "sets security options ({value}), which homefleet cannot set on a Proxmox CT",
    "sysctls": "sets kernel parameters ({value}), which homefleet cannot set on a Proxmox CT",
    "ulimits": "sets resource limits ({value}), which homefleet cannot set on a Proxmox CT",
    "group_add": "adds supplementary groups ({value}), which homefleet cannot set on a Proxmox CT",
    "read_only": "makes the root filesystem read-only, which homefleet cannot do on a Proxmox CT",
    "mac_address": "sets a MAC address, which homefleet does not set per service",
    "dns": "sets DNS servers ({value}); PVE does not configure DNS inside an app container",
    "dns_search": "sets DNS search domains ({value}); PVE does not configure DNS inside an app container",
    "dns_opt": "sets resolver options ({value}); PVE does not configure DNS inside an app container",
    "extra_hosts": "adds /etc/hosts entries ({value}); PVE does not manage /etc/hosts of an app container",
    "domainname": "sets a domain name; PVE does not set it inside an app container",
    "tmpfs": "mounts a tmpfs at {value}; a Proxmox CT has no tmpfs mount points",
    "oom_kill_disable": "disables the OOM killer, which homefleet cannot do on a Proxmox CT",
    "oom_score_adj": "adjusts the OOM score, which homefleet cannot do on a Proxmox CT",
    "pids_limit": "limits the number of processes, which homefleet cannot set on a Proxmox CT",
    "cpuset": "pins CPUs ({value}), which homefleet cannot set on a Proxmox CT",
    "init": "runs an init process (tini) as PID 1; a Proxmox app container runs the entrypoint as PID 1",
    "post_start": "runs lifecycle hooks, which a Proxmox CT does not have",
    "pre_stop": "runs lifecycle hooks, which a Proxmox CT does not have",
    "stop_signal": "stops the service with {value}; PVE stops an app container with the image's STOPSIGNAL",
    "platform": "asks for the platform {value}; PVE takes the image for the host's own platform",
}

# key -> message: no effect on Proxmox, shown as a warning.
WARN = {
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
BY_VALUE = {"cpus", "mem_limit", "memswap_limit", "deploy", "network_mode", "ipc", "pid", "scale"}
SERVICE_X = {"cores", "memory", "swap", "disk", "vmid", "ip", "ignore"}
VOLUME_X = {"size", "storage", "backup"}
APP_KEYS_FOR_COMPOSE = {"host", "compose", "package", "env", "cores", "memory", "swap", "disk", "storage", "tags",
                        "onboot", "running", "deleteData", "description"}


@dataclass
class ComposeCt:
    name: str  # the resource name, <app>-<service>
    service: str
    image: str
    spec: dict  # ProxmoxCT inputs without host and template
    depends_on: list = field(default_factory=list)  # resource names
    secret_env: dict = field(default_factory=dict)  # KEY -> SecretText
    address: Optional[str] = None


@dataclass
class ComposeAppPlan:
    app: str
    cts: list = field(default_factory=list)  # in start order
    warnings: list = field(default_factory=list)
    problems: list = field(default_factory=list)


def ct_name(app: str, service: str) -> str:
    return f"{app}-{service}"


def hostname_of(service: Service) -> str:
    name = service.hostname or re.sub(r"[^a-zA-Z0-9-]+", "-", service.name).strip("-")
    return name[:63].rstrip("-") or "service"


def pinned_address(service: Service) -> Optional[str]:
    x = service.extensions.get("x-homefleet") or {}
    return str(x["ip"]) if isinstance(x, dict) and x.get("ip") else None


def app_problems(app, file: str, where: str) -> list:
    """Stack keys of a compose app that have no meaning for it (each service is its own CT)."""
    problems = []
    for key in sorted(app.model_fields_set - APP_KEYS_FOR_COMPOSE):
        problems.append(located(file, f"{where}.{key}", "is not used by a compose app: each service becomes its own CT",
                                "Set it per service in the compose file (x-homefleet: {vmid, cores, memory, disk}, "
                                "volumes:, devices:, ports:) and remove it here"))
    return problems


class _Converter:
    def __init__(self, stack: str, app_name: str, compose: ComposeFile, host_name: str, host, app=None,
                 package=None, addresses: Optional[dict] = None):
        self.stack, self.app_name, self.compose = stack, app_name, compose
        self.host_name, self.host, self.app, self.package = host_name, host, app, package
        self.addresses = addresses or {}
        self.display = compose.display
        self.problems: list = []
        self.warnings: list = []  # (where, message, fix)

    def fail(self, where: str, message: str, fix: str = "") -> None:
        line = located(self.display, where, message, fix)
        if line not in self.problems:
            self.problems.append(line)

    def warn(self, where: str, message: str, fix: str = "") -> None:
        self.warnings.append((where, message, fix))

    # ---- the whole app

    def convert(self) -> ComposeAppPlan:
        plan = ComposeAppPlan(self.app_name)
        services = self.compose.services
        self.names = self._names(services)
        self.levels = _levels(services)
        shared = _shared_volumes(services, self.compose.volumes)
        for volume, users in shared.items():
            self.fail(f"volumes.{volume}",
                      f"is used by the services {', '.join(users)}; a Proxmox volume belongs to one CT",
                      "Give each service its own volume, or bind-mount one absolute host path in all of them")
        for name in start_order(services):
            ct = self._service(services[name])
            if ct is not None:
                plan.cts.append(ct)
        for name, network in self.compose.networks.items():
            for key in ("internal", "external", "driver", "ipam"):
                if network.get(key):
                    self.warn(f"networks.{name}.{key}", "is ignored: every service is on the host's bridge with "
                              "an address from composeNetwork")
        plan.problems = self.problems
        plan.warnings = _grouped(self.display, self.warnings)
        return plan

    def _names(self, services: dict) -> dict:
        """Every name a service answers to on Docker's network -> its address."""
        names: dict = {}
        owner: dict = {}
        for service in services.values():
            address = self.addresses.get(service.name)
            aliases = [service.name, service.hostname, service.container_name]
            for network in service.networks.values():
                aliases += network.get("aliases") or []
            for alias in filter(None, aliases):
                if alias in owner and owner[alias] != service.name:
                    self.fail(f"{service.where}", f"the name {alias!r} is also used by service {owner[alias]}",
                              "Give each service its own hostname, container_name and aliases")
                    continue
                owner[alias] = service.name
                if address:
                    names[alias] = address
        return names

    # ---- one service

    def _service(self, service: Service) -> Optional[ComposeCt]:
        x = self._extension(service)
        ignore = set(x.get("ignore") or [])
        self._features(service, ignore)
        env, secret_env = self._environment(service)
        entrypoint = self._entrypoint(service, ignore)
        volumes, mounts = self._volumes(service, ignore)
        devices = self._devices(service, ignore)
        ports = self._ports(service, ignore)
        self._relations(service)
        address = self.addresses.get(service.name)
        sizes = self._sizes(service, x)
        app = self.app
        storage = (app.storage if app and app.storage else None) or self.host.storage
        network = getattr(self.host, "composeNetwork", None)
        if address and network is not None:
            prefix = network.cidr.split("/")[1]
            net = {"bridge": network.bridge or self.host.bridge, "ip": f"{address}/{prefix}"}
            if network.gateway:
                net["gw"] = network.gateway
        else:
            net = {"bridge": self.host.bridge, "ip": "dhcp"}
        onboot = self._onboot(service)
        spec = {
            "stack": self.stack,
            "app": ct_name(self.app_name, service.name),
            "template_kind": "oci",
            "vmid": x.get("vmid"),
            "hostname": hostname_of(service),
            "cores": sizes["cores"],
            "memory": sizes["memory"],
            "swap": sizes["swap"],
            "rootfs_storage": storage,
            "rootfs_size": sizes["disk"],
            "nets": [net],
            "volumes": [{**v, "storage": v.get("storage") or storage} for v in volumes],
            "mounts": mounts,
            "devices": devices,
            "unprivileged": True,
            "onboot": onboot,
            "timezone": self.host.defaults.timezone,  # the host's defaults, as for image apps (plan.ct_spec)
            "nameserver": self.host.defaults.nameserver,
            "startup": f"order={self.levels[service.name] + 1}" if len(self.compose.services) > 1 else None,
            "tags": sorted(set((app.tags if app else []) + list(self.host.defaults.tags) + [self.app_name])),
            "description": f"compose app {self.app_name}: service {service.name}"
                           + (f"\n{app.description}" if app and app.description else ""),
            "env": env,
            "entrypoint": entrypoint,
            "running": app.running if app else True,
            "adopt": False,
            "delete_data": app.deleteData if app else False,
            "ports": ports,
        }
        spec = {k: v for k, v in spec.items() if v is not None}
        depends = [ct_name(self.app_name, d) for d in service.depends_on]
        return ComposeCt(ct_name(self.app_name, service.name), service.name, service.image, spec, depends,
                         secret_env, address)

    def _extension(self, service: Service) -> dict:
        x = service.extensions.get("x-homefleet")
        where = f"{service.where}.x-homefleet"
        if x is None:
            return {}
        if not isinstance(x, dict):
            self.fail(where, "must be a mapping", "Write e.g. x-homefleet: {memory: 2048, disk: 8}")
            return {}
        for key in x:
            if key not in SERVICE_X:
                self.fail(f"{where}.{key}", "unknown key", "allowed: " + ", ".join(sorted(SERVICE_X)))
        ignore = x.get("ignore") or []
        if not isinstance(ignore, list) or not all(isinstance(k, str) for k in ignore):
            self.fail(f"{where}.ignore", "must be a list of compose keys", "Write e.g. ignore: [user]")
            x = {**x, "ignore": []}
        for key in x.get("ignore") or []:
            if key not in SOFT and key not in ("command", "ports", "devices"):
                self.fail(f"{where}.ignore", f"{key!r} cannot be ignored",
                          "Only these can: " + ", ".join(sorted(set(SOFT) | {"command", "ports", "devices"})))
        vmid = x.get("vmid")
        if vmid is not None and (not isinstance(vmid, int) or isinstance(vmid, bool) or not 100 <= vmid <= 999999999):
            self.fail(f"{where}.vmid", f"must be a number from 100 to 999999999 (got {vmid!r})")
            x = {**x, "vmid": None}
        return x

    def _features(self, service: Service, ignore: set) -> None:
        options = service.options
        for key, value in options.items():
            at = f"{service.where}.{key}"
            if key in HARD:
                if key == "privileged" and value is not True:
                    continue
                message, fix = HARD[key]
                self.fail(at, message, fix.replace("{app}", self.app_name))
            elif key in SOFT:
                if value in (False, None, [], {}) and key in ("read_only", "init", "oom_kill_disable"):
                    continue
                if key == "platform" and str(value) in ("linux/amd64", "amd64"):
                    continue
                if key not in ignore:
                    self.fail(at, SOFT[key].format(value=_show(value)), _IGNORE_FIX.format(key=key))
                else:
                    self.warn(at, "is ignored (x-homefleet.ignore)")
            elif key in WARN:
                self.warn(at, WARN[key])
        for key in ("user", "working_dir"):
            value = getattr(service, key)
            if value is not None:
                if key not in ignore:
                    self.fail(f"{service.where}.{key}", SOFT[key].format(value=_show(value)),
                              _IGNORE_FIX.format(key=key))
                else:
                    self.warn(f"{service.where}.{key}", "is ignored (x-homefleet.ignore)")
        mode = options.get("network_mode")
        if mode is not None and mode not in ("bridge", "default"):
            what = ("shares the network of another container" if str(mode).startswith(("service:", "container:"))
                    else "uses the host's network" if mode == "host" else f"uses the network mode {mode!r}")
            self.fail(f"{service.where}.network_mode", f"{what}, which a Proxmox CT cannot do",
                      "Remove network_mode:; every service gets its own address and reaches the others by name")
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
            self.warn(f"{service.where}.healthcheck", "is not run: Proxmox has no health checks",
                      "Watch the app yourself (e.g. Uptime Kuma)")
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

    # ---- environment and command line

    def _environment(self, service: Service) -> tuple:
        env, secret_env = {}, {}
        for key, value in service.environment.items():
            at = f"{service.where}.environment.{key}"
            if not _ENV_KEY.match(key):
                self.fail(at, f"{key!r} cannot be an environment variable on Proxmox "
                          "(PVE takes letters, digits and '_')", "Rename it")
                continue
            text = value.template if isinstance(value, SecretText) else value
            if _CONTROL.search(text):
                self.fail(at, "holds a newline or control character, which PVE cannot store in a CT's environment",
                          "Put it on one line")
                continue
            new, _used = rewrite_value(value, self.names, key)
            if isinstance(new, SecretText):
                secret_env[key] = new
            else:
                env[key] = new
        return env, secret_env

    def _entrypoint(self, service: Service, ignore: set) -> Optional[str]:
        entrypoint, command = service.entrypoint, service.command
        at = f"{service.where}.command"
        if entrypoint:
            argv = entrypoint + (command or [])
        elif command:
            if command[0].startswith("/"):
                argv = command
                self.warn(at, "runs its command without the image's ENTRYPOINT: PVE runs one command line and "
                          "homefleet cannot read the image's ENTRYPOINT when planning",
                          "If the image's entrypoint must run first, add entrypoint: [<it>] to the service")
            elif "command" in ignore:
                self.warn(at, "is ignored (x-homefleet.ignore): the CT runs the image's own command")
                return None
            else:
                self.fail(at, "replaces only the image's CMD, but PVE runs one command line (the image's ENTRYPOINT "
                          "and CMD) and homefleet cannot read the image's ENTRYPOINT when planning",
                          "Add entrypoint: with the image's entrypoint (skopeo inspect --config docker://IMAGE shows "
                          "it), or add `x-homefleet: {ignore: [command]}` to run the image's own command")
                return None
        else:
            return None
        argv, _used = rewrite_argv(argv, self.names)
        if any(re.search(r"[\x00-\x08\x0a-\x1f\x7f]", a) for a in argv):
            self.fail(at, "holds a newline or control character, which PVE cannot store in an entrypoint",
                      "Put the command on one line")
            return None
        return shlex.join(argv)

    # ---- storage

    def _volumes(self, service: Service, ignore: set) -> tuple:
        volumes, mounts = [], []
        for mount in service.volumes:
            at = mount.where
            target = mount.target.rstrip("/") or "/"
            if not _safe_path(target):
                self.fail(at, f"the container path {mount.target!r} cannot hold ',', '=', '..' or spaces on Proxmox",
                          "Choose a plain absolute path")
                continue
            if mount.type == "tmpfs":
                if "tmpfs" in ignore:
                    self.warn(at, "is ignored (x-homefleet.ignore)")
                else:
                    self.fail(at, SOFT["tmpfs"].format(value=target), _IGNORE_FIX.format(key="tmpfs"))
                continue
            source = mount.source
            if mount.type == "volume" and source is not None:
                declared = self.compose.volumes.get(source) or {}
                bind = _driver_bind(declared)
                if bind is None and not self._volume_ok(source, declared):
                    continue
                if bind is not None:
                    mount_type, source = "bind", bind
                else:
                    x = declared.get("x-homefleet") or {}
                    volumes.append(self._storage_volume(f"volumes.{source}", target, x, mount))
                    continue
            elif mount.type == "volume":  # anonymous
                volumes.append(self._storage_volume(at, target, {}, mount))
                continue
            else:
                mount_type = "bind"
            if mount_type == "bind":
                if not source or not source.startswith("/"):
                    self.fail(at, f"the relative host path {source!r} has no meaning on Proxmox: there is no project "
                              "folder on the host", f"Write an absolute host path (e.g. /srv/{self.app_name}/"
                              f"{(source or '').lstrip('./~') or 'data'}, created on the host beforehand), or use a "
                              "named volume")
                    continue
                clean = source.rstrip("/") or "/"
                if not _safe_path(clean):
                    self.fail(at, f"the host path {source!r} cannot hold ',', '=', '..' or spaces on Proxmox",
                              "Choose a plain absolute path")
                    continue
                if isinstance(mount.options.get("bind"), dict) and mount.options["bind"].get("propagation"):
                    self.warn(at, "bind propagation is ignored on Proxmox")
                mounts.append({"source": clean, "path": target, "read_only": bool(mount.read_only)})
        found = empty_dir_warning(service.image, service.environment, [v["path"] for v in volumes])
        if found:
            self.warn(f"{service.where}.volumes", f"{found[0]} {found[1]}", found[2])
        return volumes, mounts

    def _volume_ok(self, name: str, declared: dict) -> bool:
        where = f"volumes.{name}"
        if declared.get("external"):
            self.fail(where, "is an external volume (created outside this file); Proxmox has no Docker volumes",
                      "Remove external: so homefleet creates the volume, or bind-mount an absolute host path")
            return False
        if declared.get("driver") not in (None, "local"):
            self.fail(f"{where}.driver", f"the volume driver {declared['driver']!r} is not available on Proxmox",
                      "Remove driver:, or bind-mount a host path where the host mounts that storage")
            return False
        if declared.get("driver_opts"):
            self.fail(f"{where}.driver_opts",
                      "only {type: none, o: bind, device: /absolute/path} is supported on Proxmox",
                      "Use that form for a host folder, or remove driver_opts:")
            return False
        return True

    def _storage_volume(self, where: str, target: str, x, mount) -> dict:
        size = DEFAULT_VOLUME_GIB
        if not isinstance(x, dict):
            self.fail(f"{where}.x-homefleet", "must be a mapping", "Write e.g. x-homefleet: {size: 20}")
            x = {}
        for key in x:
            if key not in VOLUME_X:
                self.fail(f"{where}.x-homefleet.{key}", "unknown key", "allowed: " + ", ".join(sorted(VOLUME_X)))
        if x.get("size") is not None:
            try:
                size = to_gib(x["size"])
                if size < 1:
                    raise ValueError
            except ValueError:
                self.fail(f"{where}.x-homefleet.size", f"must be a whole number of GiB ≥ 1 (got {x['size']!r})",
                          "Write e.g. size: 20")
        if mount.read_only:
            self.warn(mount.where, "is mounted read-write: homefleet mounts storage volumes read-write on Proxmox")
        volume = {"path": target, "size": size}
        if x.get("storage"):
            volume["storage"] = str(x["storage"])
        if x.get("backup") is not None:
            volume["backup"] = bool(x["backup"])
        return volume

    # ---- devices, ports, relations, sizes

    def _devices(self, service: Service, ignore: set) -> list:
        out = []
        for device in service.devices:
            if device.target != device.source:
                if "devices" in ignore:
                    self.warn(device.where, f"is passed at {device.source}, not {device.target} (x-homefleet.ignore)")
                else:
                    self.fail(device.where,
                              f"maps {device.source} to {device.target}; PVE passes a device at its host path",
                              "Use the same path on both sides, or add `x-homefleet: {ignore: [devices]}` to pass it "
                              "at its host path")
                    continue
            if device.permissions != "rwm":
                self.warn(device.where,
                          f"the permissions {device.permissions!r} are ignored: PVE gives read-write access")
            if device.source.rstrip("/") == "/dev/dri":
                gids = self.host.gpuGids
                out += [{"path": DRI_DEVICES[0], "gid": gids.video}, {"path": DRI_DEVICES[1], "gid": gids.render}]
            elif not _safe_path(device.source):
                self.fail(device.where, f"the device path {device.source!r} cannot hold ',', '=' or spaces")
            else:
                out.append({"path": device.source})
        unique = []
        for device in out:
            if device["path"] not in [d["path"] for d in unique]:
                unique.append(device)
        return unique

    def _ports(self, service: Service, ignore: set) -> list:
        meta = {p.port: p for p in (self.package.ports if self.package else [])}
        out = []
        for port in service.ports:
            if port.protocol == "sctp":
                self.fail(port.where, "SCTP ports are not supported", "Use tcp or udp")
                continue
            if port.host_ip and port.host_ip not in ("0.0.0.0", "::"):
                if "ports" in ignore:
                    self.warn(port.where, f"is bound to {port.host_ip} on Docker; on Proxmox it is reachable at the "
                              "CT's address (x-homefleet.ignore)")
                else:
                    self.fail(port.where, f"is bound to {port.host_ip} on Docker; on Proxmox the port would be "
                              "reachable by everyone on the network at the CT's address",
                              "Remove the address, or add `x-homefleet: {ignore: [ports]}` to accept that")
                    continue
            if port.published is not None and port.published != port.target:
                self.warn(port.where, f"is published as {port.published} on Docker; on Proxmox the service has its own "
                          f"address and is reached on its container port {port.target}")
            known = meta.get(port.target) or meta.get(port.published)  # a package names its ports either way
            if known is not None:
                entry = {"port": port.target, "protocol": known.protocol, "name": known.name, "scheme": known.scheme}
            else:
                web = port.protocol == "tcp" and port.target not in NON_HTTP_PORTS and not port.app_protocol
                scheme = port.app_protocol if port.app_protocol in ("http", "https") else "http" if web else None
                entry = {"port": port.target, "protocol": port.protocol, "name": port.name, "scheme": scheme}
            entry = {k: v for k, v in entry.items() if v is not None}
            if all((e["port"], e["protocol"]) != (entry["port"], entry["protocol"]) for e in out):
                out.append(entry)
        return out

    def _relations(self, service: Service) -> None:
        for dep in service.depends_on.values():
            at = f"{service.where}.depends_on.{dep.service}"
            if dep.condition != "service_started":
                what = "healthy" if dep.condition == "service_healthy" else "finished"
                self.warn(at, f"is created and started after {dep.service}, without waiting for it to be {what}: "
                          "Proxmox has no health checks", "Make sure the app retries its connections at start")
            if dep.restart:
                self.warn(f"{at}.restart", f"is ignored: homefleet does not restart a CT when {dep.service} restarts")
        networks = [n for n in service.networks if n != "default"]
        if len(self.compose.networks) > 1 and networks:
            self.warn(f"{service.where}.networks", "all services of the app share the host's composeNetwork; "
                      "the separation between the file's networks is lost")
        for name, spec in service.networks.items():
            for key in spec:
                if key in ("ipv4_address", "ipv6_address"):
                    self.warn(f"{service.where}.networks.{name}.{key}", "is ignored: the address comes from the host's "
                              "composeNetwork", "Pin one with x-homefleet: {ip: ...}")
                elif key != "aliases":
                    self.warn(f"{service.where}.networks.{name}.{key}", "is ignored on Proxmox")

    def _sizes(self, service: Service, x: dict) -> dict:
        sizes = {}
        app = self.app
        defaults = self.host.defaults
        limits = _limits(service)
        for key in ("cores", "memory", "swap", "disk"):
            value = x.get(key)
            where = f"{service.where}.x-homefleet.{key}"
            if value is not None:
                try:
                    value = _size(key, value)
                except ValueError as exc:
                    self.fail(where, str(exc), "Write e.g. " + {"cores": "cores: 2", "memory": "memory: 2048",
                                                                 "swap": "swap: 512", "disk": "disk: 8"}[key])
                    value = None
            if value is None:
                value = limits.get(key)
            if value is None and app is not None:
                value = getattr(app, key, None)
            if value is None:
                value = getattr(defaults, key, None)
            sizes[key] = value if value is not None else FALLBACK[key]
        problem = limits.get("problem")
        if problem:
            self.fail(f"{service.where}.{problem[0]}", problem[1], "Write e.g. 512m or 2g")
        return sizes

    def _onboot(self, service: Service) -> bool:
        if self.app is not None and self.app.onboot is not None:
            return self.app.onboot
        if service.restart is not None:
            return service.restart != "no"
        default = self.host.defaults.onboot
        return bool(default) if default is not None else False


def convert(stack: str, app_name: str, compose: ComposeFile, host_name: str, host, app=None, package=None,
            addresses: Optional[dict] = None) -> ComposeAppPlan:
    """One compose app -> its CT specs, warnings and problems. `addresses`: service -> static address."""
    return _Converter(stack, app_name, compose, host_name, host, app, package, addresses).convert()


# ---------------------------------------------------------------- helpers

def _grouped(display: str, warnings: list) -> list:
    """One line per (message, fix), naming every key it applies to."""
    groups: dict = {}
    for where, message, fix in warnings:
        groups.setdefault((message, fix), [])
        if where not in groups[(message, fix)]:
            groups[(message, fix)].append(where)
    return [located(display, ", ".join(wheres), message, fix) for (message, fix), wheres in groups.items()]


def _levels(services: dict) -> dict:
    levels: dict = {}
    for name in start_order(services):
        deps = services[name].depends_on
        levels[name] = 1 + max((levels[d] for d in deps), default=-1)
    return levels


def _shared_volumes(services: dict, declared: dict) -> dict:
    users: dict = {}
    for service in services.values():
        for mount in service.volumes:
            if mount.type == "volume" and mount.source and _driver_bind(declared.get(mount.source) or {}) is None:
                users.setdefault(mount.source, [])
                if service.name not in users[mount.source]:
                    users[mount.source].append(service.name)
    return {name: names for name, names in users.items() if len(names) > 1}


def _driver_bind(declared: dict) -> Optional[str]:
    """The host path of a `driver_opts: {type: none, o: bind, device: /path}` volume."""
    opts = declared.get("driver_opts") or {}
    bind = opts.get("type") == "none" and "bind" in str(opts.get("o", "")).split(",")
    if declared.get("driver") in (None, "local") and bind:
        device = opts.get("device")
        return str(device) if device else None
    return None


def _safe_path(path: str) -> bool:
    return path.startswith("/") and not re.search(r"[,=\s\x00-\x1f]", path) and ".." not in path.split("/")


def _healthcheck_disabled(check: dict) -> bool:
    test = check.get("test")
    return check.get("disable") is True or test == ["NONE"] or test == "NONE"


def _show(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


_MEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$", re.I)
_MEM_FACTOR = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def _bytes_mib(value) -> int:
    """Compose memory (bytes as a number, or '512m', '1.5g') -> MiB, rounded up."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = _MEM.match(str(value))
        if not match:
            raise ValueError(value)
        number = float(match.group(1)) * _MEM_FACTOR[match.group(2).lower()]
    return max(16, math.ceil(number / 1024**2))


def _limits(service: Service) -> dict:
    """cores / memory / swap from cpus, mem_limit, memswap_limit and deploy.resources.limits."""
    options = service.options
    limits = ((options.get("deploy") or {}).get("resources") or {}).get("limits") or {} \
        if isinstance(options.get("deploy"), dict) else {}
    out: dict = {}
    cpus = options.get("cpus", limits.get("cpus") if isinstance(limits, dict) else None)
    if cpus is not None:
        try:
            out["cores"] = max(1, math.ceil(float(cpus)))
        except (TypeError, ValueError):
            out["problem"] = ("cpus", f"must be a number of CPUs (got {cpus!r})")
    memory = options.get("mem_limit", limits.get("memory") if isinstance(limits, dict) else None)
    if memory is not None:
        try:
            out["memory"] = _bytes_mib(memory)
        except ValueError:
            out["problem"] = ("mem_limit", f"is not a memory size (got {memory!r})")
    swap_total = options.get("memswap_limit")
    if swap_total is not None and "memory" in out:
        try:
            total = -1 if str(swap_total) == "-1" else _bytes_mib(swap_total)
            out["swap"] = 0 if total == -1 else max(0, total - out["memory"])
        except ValueError:
            out["problem"] = ("memswap_limit", f"is not a memory size (got {swap_total!r})")
    return out


def _size(key: str, value) -> int:
    if isinstance(value, bool):
        raise ValueError(f"must be a number (got {value!r})")
    if key == "cores":
        if not isinstance(value, int) or not 1 <= value <= 8192:
            raise ValueError(f"must be a whole number of cores from 1 to 8192 (got {value!r})")
        return value
    if key == "disk":
        gib = to_gib(value)
        if gib < 1:
            raise ValueError(f"must be at least 1 GiB (got {value!r})")
        return gib
    mib = to_mib(value, "M")
    if key == "memory" and mib < 16:
        raise ValueError(f"must be at least 16 MiB (got {value!r})")
    return mib
