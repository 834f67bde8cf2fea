"""Docker Compose files -> host-independent app specs (`ComposeFile` of `Service`s).

`load_compose(path)` reads the Compose spec's common subset: services with image,
environment and env_file, volumes (short and long syntax) and named volumes, ports, devices,
command/entrypoint, depends_on with conditions, healthcheck, restart, networks, user,
working_dir, hostname, `x-` extensions, and `${VAR}` interpolation from a `.env` beside the
file. Every other key of the spec is kept, interpolated, in `Service.options`, so each kind
of host decides what it can do with it (see proxmox.py and truenas.py); keys that are not in the
spec at all, and what no host can run (build:, extends:, include:), are located errors.

Variables come from, in order: secrets (names only; their values stay in Pulumi's encrypted
config and the value becomes a `SecretText`), `variables` (the stack's `env:` of the app),
the `.env` file. The shell environment is not read, so a preview is reproducible.

Errors are `ConfigError`s whose lines read `<file>: <key path>: <what>. <fix>`; warnings
(unset variables, services left out by profiles) are lines of the same shape in
`ComposeFile.warnings`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import yaml

from ..errors import ConfigError, Findings, located
from ..imageref import ImageRefError, parse_image_ref
from ..yamlkeys import construct_unique_mapping
from .files import ProjectFiles
from .model import ComposeFile, Service
from .read_environment import EnvironmentRules
from .read_ports import PortRules
from .read_relations import RelationRules
from .read_volumes import VolumeRules
from .values import booleans, did_you_mean, has_secret, names_text
from .variables import InterpolationError, Interpolator, SecretRef, SecretText, parse_dotenv

__all__ = ["SERVICE_KEYS", "ComposeErrors", "load_compose", "load_compose_text", "read_compose_yaml"]

SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
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
    files: Optional[ProjectFiles] = None,
) -> ComposeFile:
    """Read and interpolate a compose file; raise ConfigError listing every problem.

    `env_file`: the variables file (default: `.env` beside the compose file, if present).
    `display`: how the file is named in messages (default: the path as given).
    `variables`: values that win over the env file (the stack's `env:` of the app).
    `secrets`: variable names whose values are secret; they become `SecretText` placeholders.
    `unset_fix`: the fix a warning about an unset variable suggests; `{name}` is the variable.
    `files`: which local files the compose file may make homefleet read (files.py); None: any.
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
    if dotenv.is_file() and files is not None and env_file is None:
        _, refused = files.check(path.parent, ".env")
        if refused:
            raise ConfigError([located(display, ".env (beside the file)", *refused)])
    if dotenv.is_file():
        try:
            dotenv_text = dotenv.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError([located(str(dotenv), "(file)", "is not UTF-8 text", "Save it as UTF-8")]) from None
    elif env_file is not None:
        raise ConfigError([located(str(env_file), "(file)", "not found", "Create it or leave env_file out")])
    return load_compose_text(text, display, base_dir=path.parent, dotenv=dotenv_text,
                             dotenv_display=str(dotenv) if dotenv_text is not None else "",
                             variables=variables, secrets=secrets, path=path, unset_fix=unset_fix, files=files)


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
    files: Optional[ProjectFiles] = None,
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
    reader = _Reader(display, Path(base_dir), lookup, unset_fix, files)
    raw = read_compose_yaml(text, display)
    compose = reader.read(raw, path or Path(base_dir) / display)
    if reader.problems:
        raise ComposeErrors(reader.problems, compose)
    return compose


class ComposeErrors(ConfigError):
    """The file's problems, and what could be read of it (`compose`: the services without errors),
    so a host kind can add its own problems to the same report."""

    def __init__(self, problems: list, compose: Optional[ComposeFile] = None):
        super().__init__(problems)
        self.compose = compose


class _Reader(EnvironmentRules, VolumeRules, PortRules, RelationRules, Findings):
    """One pass over the YAML tree; collects every problem before raising."""

    def __init__(self, display: str, base_dir: Path, lookup, unset_fix: str = "", files=None):
        super().__init__(display)
        self.files = files
        self.unset_fix = unset_fix or \
            "Set it in the .env file beside the compose file, or in the app's env: in the stack"
        self.base_dir = base_dir
        self.interp = Interpolator(lookup)
        self.lookup = lookup
        self.used_secrets: dict = {}
        self.refused: dict = {}  # service name -> (why it is not deployed, the fix for a dependency on it)
        self.included = False

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
                          did_you_mean(str(key), TOP_LEVEL_KEYS) + "allowed: " + ", ".join(sorted(TOP_LEVEL_KEYS))
                          + " and x-* extensions")
        if "include" in raw:  # reported once: what the included files define is not reported as missing
            self.included = True
            self.fail("include", "is not supported: homefleet deploys one compose file per app",
                      "Copy the included services into this file")
        data = self.interpolate({k: v for k, v in raw.items() if isinstance(k, str)}, "")
        booleans(data, self.fail)
        for name, where in self.interp.unset.items():
            self.warn(where, f"variable {name} is not set; using a blank string", self.unset_fix.format(name=name))
        volumes = self._named("volumes", data.get("volumes"), VOLUME_KEYS)
        networks = self._named("networks", data.get("networks"), NETWORK_KEYS)
        services_raw = data.get("services")
        if not isinstance(services_raw, dict) or not services_raw:
            if not (self.included and services_raw is None):
                self.fail("services", "must be a non-empty mapping of services",
                          "Add at least one service with an image:")
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
                              did_you_mean(str(key), allowed) + "allowed: " + ", ".join(sorted(allowed)))
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
                          did_you_mean(str(key), SERVICE_KEYS) or "Remove it or fix its spelling")
        refused = []  # why this service is not deployed; the rest of it is still checked
        if "build" in body:
            self.fail(f"{where}.build", "is not supported: homefleet deploys published images and builds nothing",
                      "Build and push the image, then write image: <registry>/<name>:<tag>")
            if body.get("image") is None:
                refused.append("it is built from source (build:) and has no image:")
        if "extends" in body:
            self.fail(f"{where}.extends", "is not supported", "Copy the keys of the extended service into this one")
            refused.append("it uses extends:")
        if body.get("profiles"):
            self.warn(f"{where}.profiles", f"service {name} is not deployed: it belongs to profiles "
                      f"{names_text(body['profiles'])} and homefleet deploys only services without profiles",
                      "Remove profiles: to deploy it")
            self.refused[name] = (f"it belongs to profiles {names_text(body['profiles'])}",
                                  "Remove the dependency, or profiles: from that service")
            return None
        image = body.get("image")
        if image is None:
            if "build" not in body:
                self.fail(f"{where}.image", "is required", "Add e.g. image: docker.io/library/nginx:1.27")
                refused.append("it has no image:")
            image = "docker.io/library/busybox:latest"  # a stand-in, so the rest of the service is checked too
        elif not isinstance(image, str):
            self._plain(f"{where}.image", image)
            refused.append("its image: is not a plain value")
            image = "docker.io/library/busybox:latest"
        else:
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
            if has_secret(value):
                self._plain(f"{where}.{key}", value)
        if refused:
            self.refused[name] = ("; ".join(refused), f"Fix {where} first (see its error)")
            return None
        return service
