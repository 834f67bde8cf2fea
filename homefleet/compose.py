"""Docker Compose files -> host-independent app specs (`ComposeFile` of `Service`s).

`load_compose(path)` reads the Compose spec's common subset: services with image,
environment and env_file, volumes (short and long syntax) and named volumes, ports, devices,
command/entrypoint, depends_on with conditions, healthcheck, restart, networks, user,
working_dir, hostname, `x-` extensions, and `${VAR}` interpolation from a `.env` beside the
file. Every other key of the spec is kept, interpolated, in `Service.options`, so each kind
of host decides what it can do with it (see compose_proxmox.py); keys that are not in the
spec at all, and what no host can run (build:, extends:, include:), are located errors.

Variables come from, in order: secrets (names only; their values stay in Pulumi's encrypted
config and the value becomes a `SecretText`), `variables` (the stack's `env:` of the app),
the `.env` file. The shell environment is not read, so a preview is reproducible.

Errors are `ConfigError`s whose lines read `<file>: <key path>: <what>. <fix>`; warnings
(unset variables, services left out by profiles) are lines of the same shape in
`ComposeFile.warnings`.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import yaml

from .compose_vars import InterpolationError, Interpolator, SecretRef, SecretText, Value, parse_dotenv
from .errors import ConfigError, Findings, located
from .yamlkeys import construct_unique_mapping
from .imageref import ImageRefError, parse_image_ref

__all__ = [
    "ComposeFile", "Service", "Mount", "PortSpec", "DeviceSpec", "Dependency", "SecretText", "Value",
    "load_compose", "load_compose_text", "start_order",
]

SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
ENV_KEY = re.compile(r"^[^=\s]+$")

TOP_LEVEL_KEYS = {"version", "name", "services", "volumes", "networks", "secrets", "configs", "include", "models"}
# Every service key of the Compose spec (compose-spec/schema/compose-spec.json).
SERVICE_KEYS = {
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup", "cgroup_parent", "command",
    "configs",
    "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime",
    "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules",
    "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint", "env_file", "environment", "expose",
    "extends", "external_links", "extra_hosts", "gpus", "group_add", "healthcheck", "hostname", "image", "init",
    "ipc", "isolation", "label_file", "labels", "links", "logging", "mac_address", "mem_limit", "mem_reservation",
    "mem_swappiness", "memswap_limit", "models", "network_mode", "networks", "oom_kill_disable", "oom_score_adj",
    "pid", "pids_limit", "platform", "ports", "post_start", "pre_stop", "privileged", "profiles", "provider",
    "pull_policy", "pull_refresh_after", "read_only", "restart", "runtime", "scale", "secrets", "security_opt",
    "shm_size", "stdin_open",
    "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "use_api_socket",
    "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir",
}
VOLUME_KEYS = {"driver", "driver_opts", "external", "labels", "name"}
NETWORK_KEYS = {"driver", "driver_opts", "attachable", "enable_ipv6", "enable_ipv4", "external", "ipam", "internal",
                "labels", "name"}
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
MOUNT_MODES = {"ro", "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy", "shared", "slave", "private",
               "rshared", "rslave", "rprivate"}
_PORT = re.compile(r"^(?:(?P<ip>\[[0-9a-fA-F:.]+\]|\d{1,3}(?:\.\d{1,3}){3}):)?(?:(?P<pub>\d+(?:-\d+)?)?:)?"
                   r"(?P<target>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?$")
MAX_PORT_RANGE = 100


# ---------------------------------------------------------------- the model

@dataclass
class Mount:
    """One `volumes:` entry of a service."""

    type: str  # volume | bind | tmpfs
    source: Optional[str]  # volume name, host path as written, or None (anonymous volume, tmpfs)
    target: str
    read_only: bool = False
    where: str = ""
    options: dict = field(default_factory=dict)  # long-syntax extras and short-syntax modes (z, nocopy...)

    @property
    def relative(self) -> bool:
        return self.type == "bind" and not (self.source or "").startswith("/")


@dataclass
class PortSpec:
    target: int
    published: Optional[int] = None
    protocol: str = "tcp"
    host_ip: Optional[str] = None
    app_protocol: Optional[str] = None
    name: Optional[str] = None
    where: str = ""


@dataclass
class DeviceSpec:
    source: str
    target: str
    permissions: str = "rwm"
    where: str = ""


@dataclass
class Dependency:
    service: str
    condition: str = "service_started"
    required: bool = True
    restart: bool = False


@dataclass
class Service:
    name: str
    image: str
    where: str
    environment: dict = field(default_factory=dict)  # name -> str | SecretText
    command: Optional[list] = None
    entrypoint: Optional[list] = None
    volumes: list = field(default_factory=list)
    ports: list = field(default_factory=list)
    devices: list = field(default_factory=list)
    depends_on: dict = field(default_factory=dict)  # service name -> Dependency
    healthcheck: Optional[dict] = None
    restart: Optional[str] = None
    networks: dict = field(default_factory=dict)  # network name -> {aliases: [...], ipv4_address: ...}
    hostname: Optional[str] = None
    container_name: Optional[str] = None
    user: Optional[str] = None
    working_dir: Optional[str] = None
    extensions: dict = field(default_factory=dict)  # x-* keys
    options: dict = field(default_factory=dict)  # every other Compose key, interpolated


@dataclass
class ComposeFile:
    path: Path
    display: str
    name: Optional[str]
    services: dict
    volumes: dict  # name -> {driver, driver_opts, external, x-...} (None -> {})
    networks: dict
    extensions: dict
    top_level: dict  # secrets, configs, models: kept for the host kinds to refuse or use
    secrets: tuple = ()  # secret variables the file uses
    warnings: list = field(default_factory=list)


# ---------------------------------------------------------------- YAML as compose reads it

class _ComposeLoader(yaml.SafeLoader):
    """YAML 1.2 scalars as docker compose (go-yaml v3) reads them: `80:80` and `no` stay strings."""


_ComposeLoader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     list("-+0123456789.")),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", ["<"]),
):
    _ComposeLoader.add_implicit_resolver(_tag, re.compile(_regexp), _first)


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    return int(text, 8) if text.startswith("0o") else int(text, 0) if text.startswith("0x") else int(text)


_ComposeLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_ComposeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_unique_mapping)


def read_compose_yaml(text: str, display: str) -> Any:
    try:
        return yaml.load(text, Loader=_ComposeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line: a message names its file
        raise ConfigError([located(display, "(file)", f"is not valid YAML: {problem}{where}", "Fix the syntax")]) \
            from None


# ---------------------------------------------------------------- loading

def load_compose(
    path: Union[str, Path],
    env_file: Union[str, Path, None] = None,
    *,
    display: Optional[str] = None,
    variables: Optional[dict] = None,
    secrets: Iterable[str] = (),
    unset_fix: str = "",
) -> ComposeFile:
    """Read and interpolate a compose file; raise ConfigError listing every problem.

    `env_file`: the variables file (default: `.env` beside the compose file, if present).
    `display`: how the file is named in messages (default: the path as given).
    `variables`: values that win over the env file (the stack's `env:` of the app).
    `secrets`: variable names whose values are secret; they become `SecretText` placeholders.
    `unset_fix`: the fix a warning about an unset variable suggests; `{name}` is the variable.
    """
    path = Path(path)
    display = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([located(display, "(file)", "not found",
                                   "Check the path (it is relative to the project folder)")]) from None
    except UnicodeDecodeError:
        raise ConfigError([located(display, "(file)", "is not UTF-8 text", "Save it as UTF-8")]) from None
    dotenv = Path(env_file) if env_file is not None else path.parent / ".env"
    dotenv_text = None
    if dotenv.is_file():
        dotenv_text = dotenv.read_text(encoding="utf-8")
    elif env_file is not None:
        raise ConfigError([located(str(env_file), "(file)", "not found", "Create it or leave env_file out")])
    return load_compose_text(text, display, base_dir=path.parent, dotenv=dotenv_text,
                             dotenv_display=str(dotenv) if dotenv_text is not None else "",
                             variables=variables, secrets=secrets, path=path, unset_fix=unset_fix)


def load_compose_text(
    text: str,
    display: str,
    *,
    base_dir: Union[str, Path] = ".",
    dotenv: Optional[str] = None,
    dotenv_display: str = ".env",
    variables: Optional[dict] = None,
    secrets: Iterable[str] = (),
    path: Optional[Path] = None,
    unset_fix: str = "",
) -> ComposeFile:
    """`load_compose` on text already read (tests, and hosts that keep compose text)."""
    secrets = set(secrets)
    given = dict(variables or {})
    from_file: dict = {}

    def lookup(name: str):
        if name in secrets:
            return SecretRef(name)
        if name in given:
            return str(given[name])
        found = from_file.get(name)
        if isinstance(found, SecretText):
            return SecretRef(found.names[0]) if found.template == "${" + found.names[0] + "}" else None
        return found

    if dotenv is not None:
        try:
            from_file.update(parse_dotenv(dotenv, lookup, dotenv_display))
        except ValueError as exc:
            raise ConfigError([str(exc)]) from None
    reader = _Reader(display, Path(base_dir), lookup, unset_fix)
    raw = read_compose_yaml(text, display)
    compose = reader.read(raw, path or Path(base_dir) / display)
    if reader.problems:
        raise ConfigError(reader.problems)
    return compose


class _Reader(Findings):
    """One pass over the YAML tree; collects every problem before raising."""

    def __init__(self, display: str, base_dir: Path, lookup, unset_fix: str = ""):
        super().__init__(display)
        self.unset_fix = unset_fix or \
            "Set it in the .env file beside the compose file, or in the app's env: in the stack"
        self.base_dir = base_dir
        self.interp = Interpolator(lookup)
        self.lookup = lookup
        self.used_secrets: dict = {}

    # ---- interpolation over the whole tree (values only, never keys)

    def interpolate(self, node, where: str):
        if isinstance(node, dict):
            return {k: self.interpolate(v, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [self.interpolate(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str):
            try:
                value = self.interp.value(node, where)
            except InterpolationError as exc:
                self.fail(where, str(exc), "Set the variable in the .env file beside the compose file, "
                                           "or in the app's env: in the stack")
                return node
            for name in getattr(value, "names", ()):
                self.used_secrets.setdefault(name, where)
            return value
        return node

    # ---- top level

    def read(self, raw, path: Path) -> ComposeFile:
        if not isinstance(raw, dict):
            self.fail("(file)", "must be a mapping with a services: key", "Start the file with `services:`")
            return ComposeFile(path, self.display, None, {}, {}, {}, {}, {})
        for key in raw:
            if not isinstance(key, str) or (key not in TOP_LEVEL_KEYS and not key.startswith("x-")):
                self.fail(str(key), "is not a top-level key of a compose file",
                          _did_you_mean(str(key), TOP_LEVEL_KEYS) + "allowed: " + ", ".join(sorted(TOP_LEVEL_KEYS))
                          + " and x-* extensions")
        if "include" in raw:
            self.fail("include", "is not supported: homefleet deploys one compose file per app",
                      "Copy the included services into this file")
        data = self.interpolate({k: v for k, v in raw.items() if isinstance(k, str)}, "")
        for name, where in self.interp.unset.items():
            self.warn(where, f"variable {name} is not set; using a blank string", self.unset_fix.format(name=name))
        volumes = self._named("volumes", data.get("volumes"), VOLUME_KEYS)
        networks = self._named("networks", data.get("networks"), NETWORK_KEYS)
        services_raw = data.get("services")
        if not isinstance(services_raw, dict) or not services_raw:
            self.fail("services", "must be a non-empty mapping of services", "Add at least one service with an image:")
            services_raw = {}
        services = {}
        for name, body in services_raw.items():
            service = self._service(str(name), body, volumes, networks)
            if service is not None:
                services[service.name] = service
        self._check_dependencies(services, services_raw)
        top_level = {k: data[k] for k in ("secrets", "configs", "models") if k in data}
        name = data.get("name")
        return ComposeFile(path, self.display, str(name) if name is not None else None, services, volumes, networks,
                           {k: v for k, v in data.items() if k.startswith("x-")}, top_level,
                           tuple(sorted(self.used_secrets)), self.warnings)

    def _named(self, section: str, value, allowed: set) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(section, f"must be a mapping of {section[:-1]} names", f"Write e.g. {section}: {{data: {{}}}}")
            return {}
        out = {}
        for name, body in value.items():
            where = f"{section}.{name}"
            if not VOLUME_NAME.match(str(name)):
                self.fail(where, f"{name!r} is not a valid name", "Use letters, digits, '_', '.' and '-'")
            body = body or {}
            if not isinstance(body, dict):
                self.fail(where, "must be a mapping or empty", f"Write `{name}: {{}}`")
                continue
            for key in body:
                if key not in allowed and not str(key).startswith("x-"):
                    self.fail(f"{where}.{key}", "unknown key",
                              _did_you_mean(str(key), allowed) + "allowed: " + ", ".join(sorted(allowed)))
            out[str(name)] = body
        return out

    # ---- services

    def _service(self, name: str, body, volumes: dict, networks: dict) -> Optional[Service]:
        where = f"services.{name}"
        if not SERVICE_NAME.match(name):
            self.fail(where, f"{name!r} is not a valid service name", "Use letters, digits, '_', '.' and '-'")
            return None
        if not isinstance(body, dict):
            self.fail(where, "must be a mapping", "Add image: and the rest under the service name")
            return None
        for key in body:
            if key not in SERVICE_KEYS and not str(key).startswith("x-"):
                self.fail(f"{where}.{key}", "is not a key of the Compose spec",
                          _did_you_mean(str(key), SERVICE_KEYS) or "Remove it or fix its spelling")
        if "build" in body:
            self.fail(f"{where}.build", "is not supported: homefleet deploys published images and builds nothing",
                      "Build and push the image, then write image: <registry>/<name>:<tag>")
        if "extends" in body:
            self.fail(f"{where}.extends", "is not supported", "Copy the keys of the extended service into this one")
        if body.get("profiles"):
            self.warn(f"{where}.profiles", f"service {name} is not deployed: it belongs to profiles "
                      f"{_names(body['profiles'])} and homefleet deploys only services without profiles",
                      "Remove profiles: to deploy it")
            return None
        image = body.get("image")
        if image is None:
            if "build" not in body:
                self.fail(f"{where}.image", "is required", "Add e.g. image: docker.io/library/nginx:1.27")
            return None
        if not isinstance(image, str):
            self._plain(f"{where}.image", image)
            return None
        try:
            parse_image_ref(image)
        except ImageRefError as exc:
            self.fail(f"{where}.image", f"is not a valid image reference: {exc} (got {image!r})",
                      "Write e.g. docker.io/library/postgres:17.6")
        service = Service(name=name, image=image, where=where)
        service.environment = self._environment(where, body)
        service.command = self._argv(f"{where}.command", body.get("command"))
        service.entrypoint = self._argv(f"{where}.entrypoint", body.get("entrypoint"))
        service.volumes = self._volumes(where, body.get("volumes"), volumes)
        service.ports = self._ports(where, body.get("ports"))
        service.devices = self._devices(where, body.get("devices"))
        service.depends_on = self._depends_on(where, body.get("depends_on"))
        service.healthcheck = self._mapping(f"{where}.healthcheck", body.get("healthcheck"))
        service.restart = self._restart(where, body.get("restart"))
        service.networks = self._networks(where, body.get("networks"), networks)
        for key in ("hostname", "container_name", "user", "working_dir"):
            value = body.get(key)
            if value is not None:
                value = str(value) if isinstance(value, int) else value
                setattr(service, key, self._plain(f"{where}.{key}", value))
        if service.hostname is not None and not re.fullmatch(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?",
                                                             service.hostname):
            self.fail(f"{where}.hostname", f"{service.hostname!r} is not a DNS label",
                      "Use letters, digits and '-', at most 63 characters")
        parsed = {"image", "environment", "env_file", "command", "entrypoint", "volumes", "ports", "devices",
                  "depends_on", "healthcheck", "restart", "networks", "hostname", "container_name", "user",
                  "working_dir", "build", "extends", "profiles"}
        service.extensions = {k: v for k, v in body.items() if str(k).startswith("x-")}
        service.options = {k: v for k, v in body.items() if k not in parsed and not str(k).startswith("x-")}
        for key, value in service.options.items():
            if _has_secret(value):
                self._plain(f"{where}.{key}", value)
        return service

    def _plain(self, where: str, value):
        """A value that must not hold a secret (only environment values may)."""
        if isinstance(value, SecretText) or _has_secret(value):
            names = ", ".join(sorted(set(_secret_names(value))))
            self.fail(where, f"uses the secret {names}; secrets can only be used in environment values",
                      "Pass the secret through environment: and refer to it there")
            return None
        return value

    def _environment(self, where: str, body: dict) -> dict:
        env: dict = {}
        files = body.get("env_file")
        if files is not None:
            entries = files if isinstance(files, list) else [files]
            for index, entry in enumerate(entries):
                at = f"{where}.env_file" + (f"[{index}]" if isinstance(files, list) else "")
                required = True
                if isinstance(entry, dict):
                    required = entry.get("required", True) is not False
                    entry = entry.get("path")
                if not isinstance(entry, str):
                    self.fail(at, "must be a file path", "Write e.g. env_file: app.env")
                    continue
                file = (self.base_dir / entry) if not entry.startswith("/") else Path(entry)
                if not file.is_file():
                    if required:
                        self.fail(at, f"file {entry!r} not found next to the compose file",
                                  "Create it, fix the path, or write {path: ..., required: false}")
                    continue
                try:
                    env.update(parse_dotenv(file.read_text(encoding="utf-8"), self.lookup, entry))
                except ValueError as exc:
                    self.fail(at, str(exc))
        raw = body.get("environment")
        if raw is None:
            return env
        if isinstance(raw, list):
            items = []
            for index, item in enumerate(raw):
                if isinstance(item, SecretText):
                    key, _, _ = item.template.partition("=")
                    items.append((key, SecretText(item.template[len(key) + 1:], item.names) if "=" in item.template
                                  else None, f"{where}.environment[{index}]"))
                elif isinstance(item, str):
                    key, sep, value = item.partition("=")
                    items.append((key, value if sep else None, f"{where}.environment[{index}]"))
                else:
                    self.fail(f"{where}.environment[{index}]", f"must be a KEY=value string (got {item!r})",
                              'Quote it, e.g. - "DEBUG=1"')
        elif isinstance(raw, dict):
            items = [(str(k), _scalar(v), f"{where}.environment.{k}") for k, v in raw.items()]
        else:
            self.fail(f"{where}.environment", "must be a mapping or a list of KEY=value",
                      "Write e.g. environment: {TZ: Etc/UTC}")
            return env
        for key, value, at in items:
            if not ENV_KEY.match(key):
                self.fail(at, f"{key!r} is not an environment variable name", "Write NAME=value")
                continue
            if value is None:  # `- KEY` / `KEY:` take the value from the variables, if set
                found = self.lookup(key)
                if isinstance(found, SecretRef):
                    env[key] = SecretText("${" + found.name + "}", (found.name,))
                    self.used_secrets.setdefault(found.name, at)
                elif found is not None:
                    env[key] = found
                continue
            if isinstance(value, SecretText):
                for name in value.names:
                    self.used_secrets.setdefault(name, at)
            env[key] = value
        for key, value in env.items():
            for name in getattr(value, "names", ()):
                self.used_secrets.setdefault(name, f"{where}.environment.{key}")
        return env

    def _argv(self, where: str, value) -> Optional[list]:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return shlex.split(value)
            except ValueError as exc:
                self.fail(where, f"cannot be split into words: {exc}", "Write it as a list: [prog, arg1, arg2]")
                return None
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                           for v in value):
            return [str(v) for v in value]
        if isinstance(value, list) and any(isinstance(v, SecretText) for v in value):
            self._plain(where, value)
            return None
        self.fail(where, f"must be a string or a list of strings (got {value!r})",
                  "Write e.g. [redis-server, --save, '60', '1']")
        return None

    def _mapping(self, where: str, value) -> Optional[dict]:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(where, "must be a mapping")
            return None
        return value

    def _restart(self, where: str, value) -> Optional[str]:
        if value is None:
            return None
        if value is False:
            value = "no"  # restart: no unquoted in YAML 1.1 files
        if not isinstance(value, str) or not RESTART.match(value):
            self.fail(f"{where}.restart", f"must be no, always, unless-stopped or on-failure[:N] (got {value!r})")
            return None
        return value

    # ---- volumes

    def _volumes(self, where: str, value, named: dict) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(f"{where}.volumes", "must be a list", "Write e.g. volumes: [data:/var/lib/data]")
            return []
        mounts = []
        for index, item in enumerate(value):
            at = f"{where}.volumes[{index}]"
            mount = self._short_volume(at, item) if isinstance(item, str) else \
                self._long_volume(at, item) if isinstance(item, dict) else None
            if mount is None:
                if not isinstance(item, (str, dict)):
                    self._plain(at, item) if _has_secret(item) else \
                        self.fail(at, f"must be a string or a mapping (got {item!r})", "Write e.g. data:/data")
                continue
            if not mount.target.startswith("/"):
                self.fail(at, f"the container path {mount.target!r} must be absolute", "Start it with '/'")
                continue
            if mount.type == "volume" and mount.source is not None and mount.source not in named:
                self.fail(at, f"refers to the volume {mount.source!r}, which is not declared under the top-level "
                          "volumes:", f"Add `{mount.source}:` under volumes:, or write a host path (starting with / or "
                          "./) for a bind mount")
                continue
            mounts.append(mount)
        targets = [m.target.rstrip("/") or "/" for m in mounts]
        for target in sorted({t for t in targets if targets.count(t) > 1}):
            self.fail(f"{where}.volumes", f"two entries mount at {target}", "Keep one")
        return mounts

    def _short_volume(self, at: str, text: str) -> Optional[Mount]:
        parts = text.split(":")
        mode = ""
        last_is_mode = not parts[-1].startswith("/") and set(parts[-1].split(",")) <= MOUNT_MODES
        if len(parts) >= 3 or (len(parts) == 2 and last_is_mode):
            mode = parts.pop()
        if len(parts) == 1:
            return Mount("volume", None, parts[0], where=at)
        if len(parts) != 2 or not parts[0]:
            self.fail(at, f"{text!r} is not SOURCE:TARGET[:MODE]", "Write e.g. data:/var/lib/data or /srv/x:/x:ro")
            return None
        modes = set(filter(None, mode.split(",")))
        unknown = modes - MOUNT_MODES
        if unknown:
            self.fail(at, f"unknown mode {','.join(sorted(unknown))!r}", "Use ro or rw (and z, Z, nocopy, ...)")
        source, target = parts
        kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
        options = {m: True for m in modes - {"ro", "rw"}}
        return Mount(kind, source, target, read_only="ro" in modes, where=at, options=options)

    def _long_volume(self, at: str, item: dict) -> Optional[Mount]:
        allowed = {"type", "source", "target", "read_only", "bind", "volume", "tmpfs", "image", "consistency"}
        for key in item:
            if key not in allowed and not str(key).startswith("x-"):
                self.fail(f"{at}.{key}", "unknown key", "allowed: " + ", ".join(sorted(allowed)))
        kind = item.get("type")
        if kind not in ("volume", "bind", "tmpfs", "npipe", "cluster", "image"):
            self.fail(f"{at}.type", f"must be volume, bind or tmpfs (got {kind!r})")
            return None
        if kind in ("npipe", "cluster", "image"):
            self.fail(f"{at}.type", f"{kind} mounts are not supported", "Use a volume or a bind mount")
            return None
        target = item.get("target")
        if not isinstance(target, str):
            self.fail(f"{at}.target", "is required", "Write the path inside the container, e.g. target: /data")
            return None
        source = item.get("source")
        if kind == "bind" and not isinstance(source, str):
            self.fail(f"{at}.source", "is required for a bind mount", "Write the host path, e.g. source: /srv/data")
            return None
        options = {k: v for k, v in item.items() if k in ("bind", "volume", "tmpfs", "consistency")}
        return Mount(kind, source if kind != "tmpfs" else None, target, read_only=item.get("read_only") is True,
                     where=at, options=options)

    # ---- ports, devices

    def _ports(self, where: str, value) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(f"{where}.ports", "must be a list", 'Write e.g. ports: ["8080:80"]')
            return []
        out = []
        for index, item in enumerate(value):
            at = f"{where}.ports[{index}]"
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if isinstance(item, str):
                out += self._short_port(at, item)
            elif isinstance(item, dict):
                port = self._long_port(at, item)
                if port:
                    out.append(port)
            else:
                self.fail(at, f"must be a string or a mapping (got {item!r})", 'Write e.g. "8080:80"')
        return out

    def _short_port(self, at: str, text: str) -> list:
        match = _PORT.match(text)
        if not match:
            self.fail(at, f"{text!r} is not [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]",
                      'Write e.g. "8080:80" or "53:53/udp"')
            return []
        targets = _port_range(match.group("target"))
        published = _port_range(match.group("pub")) if match.group("pub") else None
        if targets is None or (match.group("pub") and published is None):
            self.fail(at, f"{text!r}: a port is from 1 to 65535 and a range runs low-high, "
                      f"at most {MAX_PORT_RANGE} ports")
            return []
        if published is not None and len(published) not in (1, len(targets)):
            self.fail(at, f"{text!r}: the host and container ranges differ in length", "Give ranges of equal length")
            return []
        ip = match.group("ip")
        ip = ip.strip("[]") if ip else None
        out = []
        for i, target in enumerate(targets):
            pub = None if published is None else published[i] if len(published) > 1 else published[0]
            out.append(PortSpec(target, pub, match.group("proto") or "tcp", ip, where=at))
        return out

    def _long_port(self, at: str, item: dict) -> Optional[PortSpec]:
        allowed = {"target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"}
        for key in item:
            if key not in allowed and not str(key).startswith("x-"):
                self.fail(f"{at}.{key}", "unknown key", "allowed: " + ", ".join(sorted(allowed)))
        target = item.get("target")
        if not isinstance(target, int) or not 1 <= target <= 65535:
            self.fail(f"{at}.target", f"must be a port from 1 to 65535 (got {target!r})")
            return None
        published = item.get("published")
        if published is not None:
            try:
                published = int(published)
            except (TypeError, ValueError):
                self.fail(f"{at}.published", f"must be one port number (got {published!r})")
                return None
        protocol = item.get("protocol", "tcp")
        if protocol not in ("tcp", "udp", "sctp"):
            self.fail(f"{at}.protocol", f"must be tcp or udp (got {protocol!r})")
            return None
        return PortSpec(target, published, protocol, item.get("host_ip"), item.get("app_protocol"), item.get("name"),
                        where=at)

    def _devices(self, where: str, value) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(f"{where}.devices", "must be a list", 'Write e.g. devices: ["/dev/ttyUSB0:/dev/ttyUSB0"]')
            return []
        out = []
        for index, item in enumerate(value):
            at = f"{where}.devices[{index}]"
            if isinstance(item, str):
                parts = item.split(":")
                if len(parts) > 3 or not parts[0]:
                    self.fail(at, f"{item!r} is not HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]]")
                    continue
                source = parts[0]
                target = parts[1] if len(parts) > 1 and parts[1] else source
                perms = parts[2] if len(parts) > 2 else "rwm"
            elif isinstance(item, dict):
                source, target, perms = item.get("source"), item.get("target") or item.get("source"), \
                    item.get("permissions", "rwm")
            else:
                self.fail(at, f"must be a string or a mapping (got {item!r})")
                continue
            if not isinstance(source, str) or not source.startswith("/dev/"):
                self.fail(at, f"the host device {source!r} must be a path under /dev/", "Write e.g. /dev/ttyUSB0")
                continue
            if not isinstance(perms, str) or not re.fullmatch(r"[rwm]{1,3}", perms):
                self.fail(at, f"permissions must be letters of rwm (got {perms!r})")
                continue
            out.append(DeviceSpec(source, target, perms, at))
        return out

    # ---- relations

    def _depends_on(self, where: str, value) -> dict:
        if value is None:
            return {}
        out = {}
        if isinstance(value, list):
            for index, name in enumerate(value):
                if not isinstance(name, str):
                    self.fail(f"{where}.depends_on[{index}]", f"must be a service name (got {name!r})")
                    continue
                out[name] = Dependency(name)
            return out
        if not isinstance(value, dict):
            self.fail(f"{where}.depends_on", "must be a list of service names or a mapping",
                      "Write e.g. depends_on: [db] or depends_on: {db: {condition: service_healthy}}")
            return {}
        for name, spec in value.items():
            at = f"{where}.depends_on.{name}"
            spec = spec or {}
            if not isinstance(spec, dict):
                self.fail(at, "must be a mapping", "Write e.g. {condition: service_started}")
                continue
            for key in spec:
                if key not in ("condition", "required", "restart"):
                    self.fail(f"{at}.{key}", "unknown key", "allowed: condition, required, restart")
            condition = spec.get("condition", "service_started")
            if condition not in CONDITIONS:
                self.fail(f"{at}.condition", f"must be one of {', '.join(CONDITIONS)} (got {condition!r})")
                continue
            out[str(name)] = Dependency(str(name), condition, spec.get("required", True) is not False,
                                        spec.get("restart", False) is True)
        return out

    def _networks(self, where: str, value, declared: dict) -> dict:
        if value is None:
            return {}
        if isinstance(value, list):
            value = {str(n): None for n in value}
        if not isinstance(value, dict):
            self.fail(f"{where}.networks", "must be a list of network names or a mapping")
            return {}
        out = {}
        for name, spec in value.items():
            at = f"{where}.networks.{name}"
            if name != "default" and name not in declared:
                self.fail(at, f"network {name!r} is not declared under the top-level networks:",
                          f"Add `{name}:` under networks:")
                continue
            spec = spec or {}
            if not isinstance(spec, dict):
                self.fail(at, "must be a mapping or empty")
                continue
            aliases = spec.get("aliases") or []
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                self.fail(f"{at}.aliases", "must be a list of names")
                aliases = []
            out[str(name)] = {**spec, "aliases": aliases}
        return out

    def _check_dependencies(self, services: dict, raw: dict) -> None:
        for service in services.values():
            for name, dep in list(service.depends_on.items()):
                if name in services:
                    continue
                del service.depends_on[name]
                if name in raw and dep.required is False:
                    continue
                if name in raw:
                    self.fail(f"{service.where}.depends_on.{name}", f"service {name} is not deployed (it has profiles)",
                              "Remove the dependency, or profiles: from that service")
                elif dep.required:
                    self.fail(f"{service.where}.depends_on.{name}", f"no service named {name!r}",
                              f"Services in this file: {', '.join(sorted(services))}")
        cycle = _find_cycle({n: list(s.depends_on) for n, s in services.items()})
        if cycle:
            self.fail(f"services.{cycle[0]}.depends_on",
                      "services depend on each other in a cycle: " + " -> ".join(cycle),
                      "Remove one of these dependencies")


# ---------------------------------------------------------------- helpers

def _scalar(value):
    """An environment mapping value as compose turns it into text (None stays None)."""
    if value is None or isinstance(value, (str, SecretText)):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value) and "e" not in repr(value):
        return repr(value)
    return str(value)


def _has_secret(value) -> bool:
    if isinstance(value, SecretText):
        return True
    if isinstance(value, dict):
        return any(_has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return False


def _secret_names(value) -> list:
    if isinstance(value, SecretText):
        return list(value.names)
    if isinstance(value, dict):
        return [n for v in value.values() for n in _secret_names(v)]
    if isinstance(value, list):
        return [n for v in value for n in _secret_names(v)]
    return []


def _port_range(text: str) -> Optional[list]:
    low, _, high = text.partition("-")
    low_n, high_n = int(low), int(high or low)
    if not (1 <= low_n <= high_n <= 65535) or high_n - low_n >= MAX_PORT_RANGE:
        return None
    return list(range(low_n, high_n + 1))


def _names(value) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _did_you_mean(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f"Did you mean {close[0]!r}? " if close else ""


def _find_cycle(graph: dict) -> Optional[list]:
    state: dict = {}
    stack: list = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def start_order(services: dict) -> list:
    """Service names, every service after the ones it depends on (ties by name)."""
    done: list = []
    remaining = dict(services)
    while remaining:
        ready = sorted(n for n, s in remaining.items() if all(d in done for d in s.depends_on))
        if not ready:  # a cycle; load_compose refuses those
            raise ValueError("depends_on cycle")
        done += ready
        for name in ready:
            del remaining[name]
    return done

