"""A compose file as a TrueNAS custom app: checked, converted where needed, warned about.

TrueNAS stores the compose it is given and runs it unchanged as the project `ix-<app>`
(../shared/reference/truenas-apps.md §4, §6), so homefleet passes the user's compose
through and only changes what cannot work there:

* `env_file:` beside the compose file (on this machine) is inlined into `environment:`,
  because the NAS never sees that file. An absolute `env_file:` under `/mnt/<pool>/` is a
  file *on the NAS* and is kept: that is where secrets belong (see below).
* `$` is doubled after interpolation, because docker compose on the NAS interpolates again.

Everything else is checked and either kept, warned about, or refused:

* bind mounts of host paths under `/mnt/<pool>/` are kept; system paths (`/etc`, `/var`,
  the Docker socket, ...) are refused unless the app sets `allowSystemPaths: true`;
  `/mnt/.ix-apps` is refused (the middleware's own dataset);
* relative bind mounts (`./data`, `./app.conf:/etc/app.conf:ro`) resolve under the app's folder
  `<appRoot>/<app>/` (the host's `appRoot`, default `/mnt/<pool>/apps`): folders are created
  owned by the service's numeric `user:` or 568 (`apps`), files beside the compose file are
  uploaded (truenas_appdir.py, providers/truenas_files.py), and each service that mounts one gets
  a label with their content hash, so an edit recreates only those containers;
* named and anonymous volumes are kept with a warning: they live in the apps dataset and
  `app.delete` removes them (`compose down -v`) whatever `remove_ix_volumes` says;
* `network_mode: host`, macvlan/ipvlan and external networks are kept with a warning;
* published ports: duplicates are refused, 80/443 (the TrueNAS web UI) warned about;
* top-level `secrets:`/`configs:` must be files on the NAS (absolute paths) or `content:`.

Strings that stay strings: TrueNAS re-writes the compose with PyYAML before compose reads
it (middleware ix_apps/lifecycle.py `update_app_config`); 24.10/25.04 use `yaml.safe_dump`,
which leaves strings such as `1e3` or `0o17` unquoted, and compose (YAML 1.2) then reads
numbers. `environment:` and `labels:` mappings holding such a value are sent as
`KEY=VALUE` lists (a list item is one string in every YAML version); any other such string
is warned about, naming the key.

Restart: TrueNAS starts Docker after a reboot, not the apps; a service without `restart:`
stays down, so it is warned about.

Secrets: TrueNAS stores the compose (`app.config`), so values that look like secrets in
`environment:` are warned about; keep them in a file on the NAS (mode 0600) and name it in
`env_file:`. The compose itself never travels in a command line (providers/hosts/midclt.py).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from . import host_access, truenas_appdir
from .files import ProjectFiles
from .read import read_compose_yaml
from .read import load_compose_text
from .variables import InterpolationError, Interpolator, parse_dotenv, secret_names
from ..errors import ConfigError, Findings, located
from ..imageref import ImageRefError, parse_image_ref

MARKER_KEY = "x-homefleet"
SECRETISH = re.compile(r"(PASS(WORD)?|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?|AUTH)", re.I)
UI_PORTS = (80, 443)
IX_APPS = "/mnt/.ix-apps"
RISKY_PATHS = ("/var/run/docker.sock", "/run/docker.sock")


@dataclass
class Converted:
    config: dict                      # the compose mapping to send (without homefleet's marker)
    warnings: list = field(default_factory=list)
    ports: list = field(default_factory=list)    # [{"port", "protocol", "host_ip"}] published on the NAS
    named_volumes: list = field(default_factory=list)   # deleted with the app by TrueNAS (`down -v`)
    app_dir: Optional[dict] = None    # the app's folder (TrueNASAppFiles inputs), when relative binds need it


# YAML 1.2 core schema numbers (what compose, through go-yaml v3, reads a plain scalar as).
_YAML12_NUMBER = re.compile(r"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
                            r"|0o[0-7]+|0x[0-9a-fA-F]+)$")


def misread_after_redump(value: str) -> bool:
    """Whether TrueNAS 24.10/25.04 turn this string into a number on its way to compose:
    PyYAML (YAML 1.1) writes it unquoted, and YAML 1.2 reads that as a number."""
    if not _YAML12_NUMBER.match(value):
        return False
    return yaml.safe_dump(value).lstrip()[:1] not in ("'", '"')


def _pair_value(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _as_pairs(mapping: dict) -> list:
    """A compose mapping as its list form (`KEY` alone passes the variable through)."""
    return [str(k) if v is None else f"{k}={_pair_value(v)}" for k, v in mapping.items()]


def keep_strings(config: dict) -> dict:
    """`environment:`/`labels:` mappings with a value PyYAML would let become a number -> lists."""
    services = {}
    for name, body in (config.get("services") or {}).items():
        if isinstance(body, dict):
            body = dict(body)
            for key in ("environment", "labels"):
                value = body.get(key)
                if isinstance(value, dict) and any(isinstance(v, str) and misread_after_redump(v)
                                                   for v in value.values()):
                    body[key] = _as_pairs(value)
        services[name] = body
    return {**config, "services": services}


def _number_like(node, where: str) -> list:
    """[(where, value)] of strings left that 24.10/25.04 would turn into numbers."""
    if isinstance(node, dict):
        return [hit for k, v in node.items() if not (not where and str(k).startswith("x-"))
                for hit in _number_like(v, f"{where}.{k}" if where else str(k))]
    if isinstance(node, list):
        return [hit for i, v in enumerate(node) for hit in _number_like(v, f"{where}[{i}]")]
    if isinstance(node, str) and misread_after_redump(node):
        return [(where, node)]
    return []


class _Checker(Findings):
    def __init__(self, display: str, pool: Optional[str], allow_system_paths: bool, app_key: str):
        super().__init__(display)
        self.app_dir = None               # truenas_appdir.AppDir, set by convert()
        self.pool = pool
        self.allow_system_paths = allow_system_paths
        self.app_key = app_key           # e.g. "homefleet:apps.web" for the fix hints

    # ---------------------------------------------------------------- host paths

    def pool_hint(self) -> str:
        return f"/mnt/{self.pool}/" if self.pool else "/mnt/<pool>/"

    def host_path(self, where: str, path: str, what: str) -> None:
        """A path on the NAS: kept under /mnt/<pool>/, refused elsewhere unless allowed."""
        pool_hint = self.pool_hint()
        if path.startswith("~") or not path.startswith("/"):
            self.fail(where, f"{what} {path!r} is relative; on TrueNAS it would point into the app's config dataset "
                      "(/mnt/.ix-apps/app_configs/...), which homefleet does not fill and TrueNAS replaces",
                      f"Use an absolute path under {pool_hint}, e.g. {pool_hint}apps/<app>/data")
            return
        if any(part == ".." for part in path.split("/")):
            self.fail(where, f"{what} {path!r} contains '..'", "Write the path without '..'")
            return
        norm = posixpath.normpath(path)
        if norm == IX_APPS or norm.startswith(IX_APPS + "/"):
            self.fail(where, f"{what} {path!r} is inside TrueNAS's own apps dataset",
                      f"Keep app data under {pool_hint}")
            return
        parts = norm.split("/")
        if len(parts) >= 3 and parts[1] == "mnt" and parts[2]:
            if self.pool and parts[2] != self.pool:
                self.warn(where, f"{what} {path!r} is not under the host's pool /mnt/{self.pool}/",
                          "Check the pool name, or set the host's pool:")
            return
        if not self.allow_system_paths:
            self.fail(where, f"{what} {path!r} is a system path of the NAS, not a dataset under /mnt/",
                      f"Use a path under {pool_hint}, or set allowSystemPaths: true on {self.app_key} "
                      "if the app really needs it")
            return
        if norm in RISKY_PATHS:
            self.warn(where, f"{what} {path!r} is the Docker socket: the app can control every container and "
                      "gains root on the NAS", "Remove it unless the app must manage Docker")
        else:
            self.warn(where, f"{what} {path!r} is a system path of the NAS (allowed by allowSystemPaths)")


def _walk(node, where: str, interp: Interpolator, checker: _Checker):
    """Interpolate every string value (never keys), as compose does."""
    if isinstance(node, dict):
        return {k: _walk(v, f"{where}.{k}" if where else str(k), interp, checker) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, f"{where}[{i}]", interp, checker) for i, v in enumerate(node)]
    if isinstance(node, str):
        try:
            return str(interp.value(node, where))
        except InterpolationError:
            return node                       # load_compose_text reports it, located
    return node


def _escape(node):
    """`$` -> `$$` in every string: compose on the NAS interpolates the text once more."""
    if isinstance(node, dict):
        return {k: _escape(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_escape(v) for v in node]
    if isinstance(node, str):
        return node.replace("$", "$$")
    return node


def _env_file_entries(value) -> list:
    """[(index or None, path, required)] of a service's env_file."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for index, item in enumerate(items):
        required = True
        if isinstance(item, dict):
            required = item.get("required", True) is not False
            item = item.get("path")
        out.append((index if isinstance(value, list) else None, item, required))
    return out


def _on_nas(item) -> bool:
    path = item.get("path") if isinstance(item, dict) else item
    return isinstance(path, str) and path.startswith("/")


def _nas_env_files(raw: dict) -> set:
    """Services with an absolute env_file, i.e. a file on the NAS, not on this machine."""
    return {name for name, body in (raw.get("services") or {}).items()
            if isinstance(body, dict) and any(_on_nas(item) for item in _as_list(body.get("env_file")))}


def _without_nas_env_files(raw: dict, nas: set) -> dict:
    """The tree the shared loader reads: it looks env_files up on this machine."""
    services = dict(raw.get("services") or {})
    for name in nas:
        body = dict(services[name])
        local = [item for item in _as_list(body.get("env_file")) if not _on_nas(item)]
        if local:
            body["env_file"] = local
        else:
            body.pop("env_file", None)
        services[name] = body
    return {**raw, "services": services}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def convert(path: Path, display: str, *, app: str, app_key: str, variables: Optional[dict] = None,
            pool: Optional[str] = None, allow_system_paths: bool = False, secrets=(),
            generation: Optional[str] = None, files: Optional[ProjectFiles] = None,
            app_root: Optional[str] = None, host_key: str = "") -> Converted:
    """Read `path` and make it a TrueNAS custom app's compose; ConfigError lists every problem.

    `generation`: the host's TrueNAS version when the stack names it (`24.10`, `25.04`);
    None means any, so the 24.10/25.04 re-write is warned about.

    `secrets`: the app's secret names (homefleet:secrets); a compose that uses one is refused,
    because its value would have to travel in the compose (see the module docstring).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([located(display, "(file)", "not found",
                                   "Check the path (it is relative to the project folder)")]) from None
    except UnicodeDecodeError:
        raise ConfigError([located(display, "(file)", "is not UTF-8 text", "Save it as UTF-8")]) from None
    raw = read_compose_yaml(text, display)
    checker = _Checker(display, pool, allow_system_paths, app_key)
    checker.app_dir = truenas_appdir.app_dir(app_root, pool, app, Path(path).parent, files, checker.fail, host_key)
    if not isinstance(raw, dict):
        raise ConfigError([located(display, "(file)", "must be a mapping with a services: key",
                                   "Start the file with `services:`")])
    if MARKER_KEY in raw:
        checker.fail(MARKER_KEY, "is homefleet's ownership marker and is set by homefleet", "Remove it")

    variables = {k: str(v) for k, v in (variables or {}).items()}
    dotenv_path = Path(path).parent / ".env"
    if files is not None and dotenv_path.is_file() and files.check(Path(path).parent, ".env")[1]:
        raise ConfigError([located(display, ".env (beside the file)", *files.check(Path(path).parent, ".env")[1])])
    dotenv_text = dotenv_path.read_text(encoding="utf-8") if dotenv_path.is_file() else None
    nas_env = _nas_env_files(raw)
    shared_text = yaml.safe_dump(_without_nas_env_files(raw, nas_env), sort_keys=False) if nas_env else text
    try:
        compose = load_compose_text(shared_text, display, base_dir=Path(path).parent, dotenv=dotenv_text,
                                    dotenv_display=str(dotenv_path), variables=variables, path=Path(path),
                                    secrets=secrets, files=files)
    except ConfigError as exc:
        raise ConfigError(exc.problems + checker.problems) from None
    for service in compose.services.values():
        for key, value in service.environment.items():
            for name in secret_names(value):
                checker.fail(f"{service.where}.environment.{key}",
                             f"uses the secret {name}, which homefleet cannot hand to TrueNAS without exposing it "
                             "(the compose is a midclt command-line argument and is stored in the app's config)",
                             f"Write it to a file on the NAS (mode 0600) under {checker.pool_hint()} and name "
                             "that file in env_file:")

    from_file: dict = {}

    def lookup(name: str):
        return variables[name] if name in variables else from_file.get(name)

    if dotenv_text is not None:
        from_file.update({k: str(v) for k, v in parse_dotenv(dotenv_text, lookup, str(dotenv_path)).items()})
    data = _walk(raw, "", Interpolator(lookup), checker)

    out = keep_strings(_convert(data, compose, checker, app))
    if generation is None or generation < "25.10":
        for where, value in _number_like(out, ""):
            checker.warn(where, f"{value!r} reaches the container as a number on TrueNAS 24.10 and 25.04 (TrueNAS "
                         "re-writes the compose with PyYAML, which leaves it unquoted, and compose reads YAML 1.2)",
                         "Write it so it is not a number, e.g. with a unit or a prefix, or use TrueNAS 25.10+")
    if checker.problems:
        raise ConfigError(checker.problems)
    volumes = sorted(name for name, spec in compose.volumes.items() if not (spec or {}).get("external"))
    return Converted(_escape(out), compose.warnings + checker.warnings, _published(compose, checker), volumes,
                     truenas_appdir.inputs(checker.app_dir))


def _convert(data: dict, compose, checker: _Checker, app: str) -> dict:
    if data.get("name") is not None:
        checker.warn("name", f"is ignored on TrueNAS: the project is always named ix-{app}")
    services = {}
    for name, body in (data.get("services") or {}).items():
        if not isinstance(body, dict):
            services[name] = body
            continue
        where = f"services.{name}"
        service = compose.services.get(name)
        body = dict(body)
        if service is not None:
            _check_image(checker, where, service.image)
            _check_mounts(checker, service)
            body = truenas_appdir.rewrite(checker.app_dir, service, body, checker.fail)
            _check_environment(checker, where, service.environment)
        if body.get("network_mode") == "host":
            checker.warn(f"{where}.network_mode", "host: the app shares the NAS's network stack; its ports are "
                         "not mapped and it can bind any port, including the TrueNAS web UI's")
        if body.get("restart") is None and not ((body.get("deploy") or {}).get("restart_policy")):
            checker.warn(f"{where}.restart", "is not set: TrueNAS starts Docker after a reboot but not the apps, "
                         "so this service stays down until someone starts the app",
                         "Add restart: unless-stopped")
        if body.get("privileged") is True:
            checker.warn(f"{where}.privileged", "true gives the container full access to the NAS")
        if "env_file" in body:
            kept = []
            for index, path, required in _env_file_entries(body["env_file"]):
                at = f"{where}.env_file" + (f"[{index}]" if index is not None else "")
                if isinstance(path, str) and path.startswith("/"):
                    checker.host_path(at, path, "the env_file")
                    kept.append(path if required else {"path": path, "required": False})
                else:
                    checker.warn(at, f"{path!r} is on this machine, so its values are inlined into "
                                 f"{where}.environment and sent to the NAS in the compose (stored by TrueNAS, "
                                 "visible in the NAS process list while midclt runs)",
                                 "For secrets, put the file on the NAS (mode 0600) and write its absolute path")
            if service is not None:
                body["environment"] = dict(service.environment)
            if kept:
                body["env_file"] = kept
            else:
                body.pop("env_file")
        services[name] = body
    host_access.gate(compose, checker.allow_system_paths, checker.app_key, checker.fail, checker.warn,
                     bind_sources=False)  # bind sources: host_path's pool rules
    _check_ports(checker, compose)
    _check_named(checker, compose)
    _check_networks(checker, compose)
    _check_files(checker, data)
    return {**data, "services": services}


def _check_image(checker: _Checker, where: str, image: str) -> None:
    try:
        ref = parse_image_ref(image)
    except ImageRefError:
        return                          # load_compose_text refused it already
    if not ref.is_pinned:
        checker.warn(f"{where}.image", f"{image!r} is not pinned: homefleet sends the digest the tag names on the "
                     "NAS at each create or update (and a refresh reports when it moved), so any change of the app "
                     "can bring a new release", "Pin a release tag or a digest, e.g. nginx:1.27.3")


def _check_mounts(checker: _Checker, service) -> None:
    for mount in service.volumes:
        if mount.relative:
            continue                      # the app's folder: truenas_appdir.rewrite
        if mount.type == "bind":
            checker.host_path(mount.where, mount.source or "", "the bind mount source")
        elif mount.type == "volume" and mount.source:
            checker.warn(mount.where, f"the named volume {mount.source!r} lives in TrueNAS's apps dataset and is "
                         "deleted with the app (app.delete runs `docker compose down -v`), so the app is protected: "
                         "removing it fails in the preview unless it sets deleteData: true (docs/truenas.md)",
                         f"Keep data you care about on a host path under {checker.pool_hint()}")
        elif mount.type == "volume":
            checker.warn(mount.where, f"an anonymous volume at {mount.target} is recreated empty on every "
                         "redeploy", f"Give it a host path under {checker.pool_hint()}")


def _check_environment(checker: _Checker, where: str, environment: dict) -> None:
    secretish = sorted(k for k, v in environment.items() if SECRETISH.search(k) and v not in (None, ""))
    if secretish:
        looks = "looks like a secret" if len(secretish) == 1 else "look like secrets"
        checker.warn(f"{where}.environment", f"{', '.join(secretish)} {looks}; the compose is stored "
                     "by TrueNAS and passed to midclt as a command-line argument (visible in the NAS process "
                     "list while it runs)", ("Put it" if len(secretish) == 1 else "Put them") + " in a file on the NAS (mode 0600) and name it in env_file:")


def _check_ports(checker: _Checker, compose) -> None:
    seen: dict = {}
    for service in compose.services.values():
        for port in service.ports:
            if port.published is None:
                continue
            ip = port.host_ip or "0.0.0.0"
            key = (ip, port.published, port.protocol)
            if key in seen:
                checker.fail(port.where, f"host port {port.published}/{port.protocol} is also published at {seen[key]}",
                             "Publish each host port once")
                continue
            seen[key] = port.where
            if port.published in UI_PORTS and ip in ("0.0.0.0", "::"):
                checker.warn(port.where, f"host port {port.published} is where the TrueNAS web UI listens by "
                             "default; the app will fail to start unless the UI was moved",
                             "Publish another port, e.g. 8080")


def _check_named(checker: _Checker, compose) -> None:
    for name, spec in compose.volumes.items():
        opts = spec.get("driver_opts") or {}
        device = opts.get("device")
        if isinstance(device, str) and "bind" in str(opts.get("o", "")):
            checker.host_path(f"volumes.{name}.driver_opts.device", device, "the bind device")
        if spec.get("external"):
            checker.warn(f"volumes.{name}.external", "the volume must already exist on the NAS, or `up` fails")


def _check_networks(checker: _Checker, compose) -> None:
    for name, spec in compose.networks.items():
        driver = spec.get("driver")
        if driver in ("macvlan", "ipvlan"):
            parent = (spec.get("driver_opts") or {}).get("parent")
            checker.warn(f"networks.{name}.driver", f"{driver}: containers get addresses on the LAN"
                         + (f" through {parent}" if parent else " (no driver_opts.parent: Docker picks a dummy "
                            "interface, so the LAN cannot reach them)")
                         + "; the NAS itself cannot reach them over that interface")
        elif driver not in (None, "bridge"):
            checker.warn(f"networks.{name}.driver", f"{driver!r} is not a driver TrueNAS apps use (bridge, "
                         "macvlan, ipvlan)")
        if spec.get("external"):
            checker.warn(f"networks.{name}.external", "the network must already exist on the NAS "
                         "(docker network create), or `up` fails")


def _check_files(checker: _Checker, data: dict) -> None:
    for section in ("secrets", "configs"):
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            continue
        for name, spec in entries.items():
            where = f"{section}.{name}"
            spec = spec if isinstance(spec, dict) else {}
            if "file" in spec:
                checker.host_path(f"{where}.file", str(spec["file"]), f"the {section[:-1]} file")
            elif "content" in spec and section == "configs":
                continue
            elif "environment" in spec:
                checker.fail(f"{where}.environment", "reads the environment of TrueNAS's middleware, not yours",
                             "Put the value in a file on the NAS and write file: /mnt/<pool>/...")
            else:
                checker.fail(where, "needs file: with an absolute path on the NAS"
                             + (" or content:" if section == "configs" else ""),
                             "Write e.g. file: /mnt/<pool>/apps/<app>/" + name)


def _published(compose, checker: _Checker) -> list:
    out = []
    for service in compose.services.values():
        for port in service.ports:
            if port.published is not None:
                item = {"port": port.published, "protocol": port.protocol, "host_ip": port.host_ip or "0.0.0.0"}
                if item not in out:
                    out.append(item)
    return sorted(out, key=lambda p: (p["port"], p["protocol"]))


def dump(config: dict) -> str:
    """The text sent to TrueNAS (homefleet's marker is added by the provider)."""
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)
