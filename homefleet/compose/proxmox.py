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

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .model import ComposeFile, Service, start_order
from .names import rewrite_argv, rewrite_value
from ..config import PROJECT
from ..errors import located
from ..plan_types import upgrade_inputs
from .health import health_input
from . import host_access
from .proxmox_appdir import AppDir
from .proxmox_files import FileRules
from . import users
from .proxmox_keys import BY_VALUE, HARD, NO_EFFECT, SOFT, WARN, KeyRules, init_cwd, init_user
from .proxmox_sizes import limits_of, size_of
from .proxmox_storage import StorageRules, driver_bind, safe_path
from .variables import SecretText

__all__ = ["BY_VALUE", "HARD", "NO_EFFECT", "SOFT", "WARN", "ComposeAppPlan", "ComposeCt", "app_problems", "convert",
           "ct_name", "hostname_of", "pinned_address"]

FALLBACK = {"cores": 1, "memory": 512, "swap": 512, "disk": 4}
DRI_DEVICES = ("/dev/dri/card0", "/dev/dri/renderD128")
NON_HTTP_PORTS = {21, 22, 25, 53, 110, 143, 389, 465, 587, 636, 993, 995, 1883, 3306, 5432, 5672,
                  6379, 8883, 9092, 11211, 27017}
HTTPS_PORTS = {443, 8443, 9443}
_ENV_KEY = re.compile(r"^\w+$")
_RAW_ENV_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
SERVICE_X = {"cores", "memory", "swap", "disk", "vmid", "ip", "ignore"}
APP_KEYS_FOR_COMPOSE = {"host", "compose", "package", "env", "cores", "memory", "swap", "disk", "storage", "tags",
                        "onboot", "running", "deleteData", "description", "allowFilesOutsideProject",
                        "allowSystemPaths", "acknowledge", "keepBackups", "rollback", "healthTimeout", "healthSettle"}


@dataclass
class ComposeCt:
    name: str  # the resource name, <app>-<service>
    service: str
    image: str
    spec: dict  # ProxmoxCT inputs without host and template
    depends_on: list = field(default_factory=list)  # resource names
    secret_env: dict = field(default_factory=dict)  # KEY -> SecretText
    address: Optional[str] = None
    command: Optional[list] = None  # `command:` without `entrypoint:`: runs behind the image's ENTRYPOINT


@dataclass
class ComposeAppPlan:
    app: str
    app_dir: Optional[dict] = None  # AppFiles inputs: the app's folder on the host (proxmox_appdir.py)
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


class _Converter(KeyRules, StorageRules, FileRules):
    def __init__(self, stack: str, app_name: str, compose: ComposeFile, host_name: str, host, app=None,
                 package=None, addresses: Optional[dict] = None, files=None):
        self.stack, self.app_name, self.compose = stack, app_name, compose
        self.app_dir = AppDir(getattr(host, "appRoot", None), app_name, Path(compose.path).parent, files, self.fail)
        self.app_dir.host_key = f"{PROJECT}:hosts.{host_name}"
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
        self.hosts = self._hosts_entries(services)
        self.levels = _levels(services)
        self.shared = _shared_volumes(services, self.compose.volumes)  # -> one folder in the app's folder
        allowed = bool(self.app is not None and getattr(self.app, "allowSystemPaths", False))
        host_access.gate(self.compose, allowed, f"{PROJECT}:apps.{self.app_name}", self.fail, self.warn,
                         refused_anyway=("privileged", "pid", "ipc", "uts", "userns_mode", "cgroup", "use_api_socket",
                                         "volumes_from", "cap_add"), docker_sockets=False)
        for name in start_order(services):
            ct = self._service(services[name])
            if ct is not None:
                plan.cts.append(ct)
        for name, network in self.compose.networks.items():
            for key in ("internal", "external", "driver", "ipam"):
                if network.get(key):
                    self.warn(f"networks.{name}.{key}", "is ignored: every service is on the host's bridge with "
                              "an address from composeNetwork")
        plan.app_dir = self.app_dir.plan()
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
            for other in services.values():  # `links: [db:database]` elsewhere: db also answers to database
                for target, alias in _links(other):
                    if target == service.name and alias:
                        aliases.append(alias)
            for alias in filter(None, aliases):
                if alias in owner and owner[alias] != service.name:
                    self.fail(f"{service.where}", f"the name {alias!r} is also used by service {owner[alias]}",
                              "Give each service its own hostname, container_name and aliases")
                    continue
                owner[alias] = service.name
                if address:
                    names[alias] = address
        return names

    def _extra_hosts(self, service: Service) -> list:
        """`extra_hosts:` ("name:address", "name=address" or a mapping) -> this CT's own /etc/hosts entries;
        `links:` to a service not in this file is an error (each link is a name, see _names)."""
        for target, _alias in _links(service):
            if target not in self.compose.services:
                self.fail(f"{service.where}.links", f"links to {target!r}, which is not a service of this file",
                          "Remove it; services of this file reach each other by name")
        value = service.options.get("extra_hosts")
        items = list(value.items()) if isinstance(value, dict) else \
            [re.split(r"[=:]", str(v), maxsplit=1) for v in value] if isinstance(value, list) else []
        out = []
        for item in items:
            name, address = (str(item[0]), str(item[1])) if len(item) == 2 else (str(item[0]), "")
            address = address.strip("[]")
            if address == "host-gateway":
                gateway = getattr(getattr(self.host, "composeNetwork", None), "gateway", None)
                address = gateway or ""
            try:
                ipaddress.ip_address(address)
            except ValueError:
                self.fail(f"{service.where}.extra_hosts", f"{name}:{address} is not NAME:ADDRESS",
                          "Write e.g. - \"printer.lan:192.0.2.9\"")
                continue
            out.append([address, name])
        return out

    def _hosts_entries(self, services: dict) -> list:
        """/etc/hosts of every CT of the app: [address, names...] per service, as Docker's DNS answers them.

        Names also appear in config files and in images' own defaults, which no rewriting reaches."""
        by_address: dict = {}
        for alias, address in self.names.items():
            by_address.setdefault(address, [])
            if alias not in by_address[address]:
                by_address[address].append(alias)
        for service in services.values():  # the CT's hostname too (a service_name becomes service-name)
            address = self.addresses.get(service.name)
            if address and hostname_of(service) not in by_address.get(address, []):
                by_address.setdefault(address, []).append(hostname_of(service))
        return [[address, *names] for address, names in sorted(by_address.items(), key=lambda i: ipaddress.ip_address(i[0]))]

    # ---- one service

    def _service(self, service: Service) -> Optional[ComposeCt]:
        x = self._extension(service)
        ignore = set(x.get("ignore") or [])
        self._features(service, ignore)
        env, secret_env, raw_env = self._environment(service)
        entrypoint, command = self._entrypoint(service, ignore)
        volumes, mounts, files = self._volumes(service, ignore)
        more_mounts, more_files = self._secrets_and_configs(service)
        mounts, files = mounts + more_mounts, files + more_files
        devices = self._devices(service, ignore)
        ports = self._ports(service, ignore)
        self._relations(service)
        try:
            health = health_input(service.healthcheck, f"{service.where}.healthcheck")
        except ValueError as exc:
            where, _, message = str(exc).partition(": ")
            self.fail(where, message)
            health = None
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
            "hosts": (self.hosts + self._extra_hosts(service)) if address and self.hosts else None,
            "files": files or None,
            "init_user": _init(service, ignore, f"{self.display}: {service.where}.user", raw_env),
            "health": health,
            **upgrade_inputs(app, self.host),
        }
        spec = {k: v for k, v in spec.items() if v is not None}
        depends = [ct_name(self.app_name, d) for d in service.depends_on]
        return ComposeCt(ct_name(self.app_name, service.name), service.name, service.image, spec, depends,
                         secret_env, address, command)

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
            if key not in SOFT and key not in WARN and key not in ("command", "ports", "devices", "working_dir"):
                self.fail(f"{where}.ignore", f"{key!r} cannot be ignored",
                          "Only these can: " + ", ".join(sorted(set(SOFT) | {"command", "ports", "devices",
                                                                              "working_dir"})))
        vmid = x.get("vmid")
        if vmid is not None and (not isinstance(vmid, int) or isinstance(vmid, bool) or not 100 <= vmid <= 999999999):
            self.fail(f"{where}.vmid", f"must be a number from 100 to 999999999 (got {vmid!r})")
            x = {**x, "vmid": None}
        return x

    # ---- environment and command line

    def _environment(self, service: Service) -> tuple:
        """-> (env, secret env, raw env): names PVE's `env` cannot hold (`discovery.type`) go in raw
        `lxc.environment` lines (providers/hosts/ctinit.py says why), written like lxc.init.uid."""
        env, secret_env, raw = {}, {}, {}
        for key, value in service.environment.items():
            at = f"{service.where}.environment.{key}"
            plain = bool(_ENV_KEY.match(key))
            if not plain and not _RAW_ENV_KEY.match(key):
                self.fail(at, f"{key!r} cannot be an environment variable on Proxmox (PVE takes letters, digits, '_', "
                          "and homefleet '.' and '-' through raw lxc.environment lines)", "Rename it")
                continue
            text = value.template if isinstance(value, SecretText) else value
            if _CONTROL.search(text):
                self.fail(at, "holds a newline or control character, which PVE cannot store in a CT's environment",
                          "Put it on one line")
                continue
            new, _used = rewrite_value(value, self.names, key)
            if not plain and isinstance(new, SecretText):
                self.fail(at, f"holds a secret, and {key!r} can only be passed in a raw lxc.environment line, which "
                          "is not kept secret", "Pass the secret under a name of letters, digits and '_'")
            elif not plain:
                raw[key] = new
            elif isinstance(new, SecretText):
                secret_env[key] = new
            else:
                env[key] = new
        return env, secret_env, raw

    def _entrypoint(self, service: Service, ignore: set) -> tuple:
        """-> (PVE's entrypoint line or None, the command to run behind the image's ENTRYPOINT or None).

        As Docker: `entrypoint:` replaces the image's ENTRYPOINT (and drops its CMD unless `command:`
        is given); `command:` alone runs behind the image's ENTRYPOINT, which the template reads
        from the image (OciTemplate's image_config) and the CT joins at deploy time.
        """
        entrypoint, command = service.entrypoint, service.command
        at = f"{service.where}.entrypoint" if entrypoint is not None else f"{service.where}.command"
        if entrypoint is None and command is not None and "command" in ignore:
            self.warn(at, "is ignored (x-homefleet.ignore): the CT runs the image's own command")
            return None, None
        if entrypoint:
            argv = entrypoint + (command or [])
        elif entrypoint is not None:  # `entrypoint: ""` or `[]`: the image's ENTRYPOINT is reset
            if not command:
                self.fail(at, "clears the image's entrypoint and gives no command, so the CT has nothing to run",
                          "Write the command to run under command:, or remove entrypoint:")
                return None, None
            argv = command
        elif command:
            argv = command
        else:
            return None, None
        argv, _used = rewrite_argv(argv, self.names)
        if any(_CONTROL.search(a) for a in argv):
            self.fail(at, "holds a newline or control character, which PVE cannot store in an entrypoint",
                      "Put the command on one line")
            return None, None
        if entrypoint is None:
            return None, argv
        return shlex.join(argv), None

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
            elif not safe_path(device.source):
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
            if port.host_ip and _loopback(port.host_ip):
                continue  # published on Docker's loopback only: not published (no URL), reachable inside the CT
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
                tls = port.target in HTTPS_PORTS or (port.name or "").lower() == "https"
                scheme = port.app_protocol if port.app_protocol in ("http", "https") else \
                    ("https" if tls else "http") if web else None
                entry = {"port": port.target, "protocol": port.protocol, "name": port.name, "scheme": scheme}
            entry = {k: v for k, v in entry.items() if v is not None}
            if all((e["port"], e["protocol"]) != (entry["port"], entry["protocol"]) for e in out):
                out.append(entry)
        return out

    def _relations(self, service: Service) -> None:
        for dep in service.depends_on.values():
            at = f"{service.where}.depends_on.{dep.service}"
            if dep.condition == "service_completed_successfully":
                self.warn(at, f"is created and started after {dep.service}, without waiting for it to finish: "
                          "a Proxmox CT is a service that keeps running", "Make sure the app retries its connections at start")
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
        limits = limits_of(service)
        for key in ("cores", "memory", "swap", "disk"):
            value = x.get(key)
            where = f"{service.where}.x-homefleet.{key}"
            if value is not None:
                try:
                    value = size_of(key, value)
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
            addresses: Optional[dict] = None, files=None) -> ComposeAppPlan:
    """One compose app -> its CT specs, warnings and problems. `addresses`: service -> static address;
    `files`: the ProjectFiles boundary for files beside the compose file."""
    return _Converter(stack, app_name, compose, host_name, host, app, package, addresses, files).convert()


# ---------------------------------------------------------------- helpers

def _grouped(display: str, warnings: list) -> list:
    """One line per (message, fix), naming every key it applies to."""
    groups: dict = {}
    for where, message, fix in warnings:
        groups.setdefault((message, fix), [])
        if where not in groups[(message, fix)]:
            groups[(message, fix)].append(where)
    return [located(display, ", ".join(wheres), message, fix) for (message, fix), wheres in groups.items()]


def _init(service: Service, ignore: set, at: str, raw_env: Optional[dict] = None) -> Optional[dict]:
    """What the CT's init runs as and where (`user:` -> lxc.init.uid/gid, `working_dir:` -> lxc.init.cwd)."""
    out = {}
    if service.user is not None:
        named = users.named(service.user, at, service.image) if "user" not in ignore else None
        out = dict(init_user(service.user) or named or {})
    cwd = init_cwd(service.working_dir) if service.working_dir is not None and "working_dir" not in ignore else None
    if cwd is not None:
        out["cwd"] = cwd
    if raw_env:
        out["env"] = dict(raw_env)
    return out or None


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
            if mount.type == "volume" and mount.source and driver_bind(declared.get(mount.source) or {}) is None:
                users.setdefault(mount.source, [])
                if service.name not in users[mount.source]:
                    users[mount.source].append(service.name)
    return {name: names for name, names in users.items() if len(names) > 1}


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _links(service: Service) -> list:
    """`links:` as [(service, alias or None)]."""
    value = service.options.get("links")
    out = []
    for item in value if isinstance(value, list) else []:
        target, _, alias = str(item).partition(":")
        out.append((target, alias or None))
    return out
