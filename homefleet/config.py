"""Load and validate a stack's config and the catalog it uses; every error is located."""

import json
import os
import re
from typing import Optional

from .catalog import CatalogError, load_catalog
from .errors import ConfigError, located
from .stack import Stack, registry_host
from .validation import validate

PROJECT = "homefleet"


def stack_file(stack_name: str) -> str:
    return f"stacks/Pulumi.{stack_name}.yaml"


def cross_problems(raw: dict, file: str) -> list:
    """Checks between apps and hosts, on the raw config so they show with every other error."""
    hosts = raw.get("hosts") if isinstance(raw.get("hosts"), dict) else {}
    apps = raw.get("apps") if isinstance(raw.get("apps"), dict) else {}
    problems, seen = [], {}
    for name, app in apps.items():
        if not isinstance(app, dict) or not isinstance(app.get("host"), str):
            continue
        host = app["host"]
        if host not in hosts:
            known = ", ".join(sorted(hosts)) or "none"
            problems.append(located(file, f"{PROJECT}:apps.{name}.host", f"unknown host {host!r} (hosts: {known})",
                                    "Use a host declared under homefleet:hosts"))
            continue
        vmid = app.get("vmid")
        if isinstance(vmid, int) and not isinstance(vmid, bool):
            other = seen.get((host, vmid))
            if other:
                problems.append(located(file, f"{PROJECT}:apps.{name}.vmid",
                                        f"{vmid} is also the vmid of app {other} on host {host}",
                                        "Give each app on a host its own vmid, or leave vmid out to allocate one"))
            seen[(host, vmid)] = name
    return problems


def load(stack_name: str, raw: dict, project_dir: str = ".", catalog_dir: Optional[str] = None):
    """`raw`: {'hosts': ..., 'apps': ...} as read from the stack config. -> (Stack, catalog)."""
    file = stack_file(stack_name)
    if not raw.get("hosts"):
        raise ConfigError([located(file, f"{PROJECT}:hosts", "no hosts are declared",
                                   "Add at least one host under homefleet:hosts (see docs/stacks.md)")])
    cross = cross_problems(raw, file)
    try:
        stack = validate(Stack, {"hosts": raw.get("hosts"), "apps": raw.get("apps") or {}}, file, f"{PROJECT}:")
    except ConfigError as exc:
        raise ConfigError(exc.problems + cross) from None
    if cross:
        raise ConfigError(cross)
    catalog_dir = catalog_dir or os.path.join(project_dir, "packages")
    needed = sorted({app.package for app in stack.apps.values() if app.package})
    catalog = {}
    if needed:
        try:
            catalog = load_catalog(catalog_dir)
        except CatalogError as exc:
            raise ConfigError([str(exc)]) from None
    problems = []
    for name, app in stack.apps.items():
        if app.package and app.package not in catalog:
            problems.append(located(file, f"{PROJECT}:apps.{name}.package", f"no package named {app.package!r}",
                                    f"Use one of packages/*.yml (e.g. {', '.join(sorted(catalog)[:5])}) or set `image:`"))
        elif app.package and catalog[app.package].compose and stack.hosts[app.host].kind == "proxmox":
            pass  # multi-service packages are planned by the compose planner
    if problems:
        raise ConfigError(problems)
    return stack, catalog


def registry_fix(name: str) -> str:
    """How to set one registry's credentials so that its dots stay in its name."""
    return (f"pulumi config set --secret --path 'homefleet:registries[\"{name}\"].password' PASSWORD and "
            f"pulumi config set --path 'homefleet:registries[\"{name}\"].username' USER (the brackets and quotes "
            "keep the dots of the registry name; see docs/stacks.md)")


def _split_registry(name: str, entry) -> Optional[str]:
    """The dotted registry name a `--path 'registries.ghcr.io.password'` split into nested keys
    ({ghcr: {io: {password}}} -> 'ghcr.io'), or None when `entry` is not that shape."""
    parts = [name]
    while isinstance(entry, dict) and len(entry) == 1 and not set(entry) & {"username", "password"}:
        (key, entry), = entry.items()
        parts.append(str(key))
    if len(parts) > 1 and isinstance(entry, dict) and set(entry) & {"username", "password"}:
        return ".".join(parts)
    return None


def check_registries(stack_name: str, value) -> None:
    """`homefleet:registries`: {registry host: {username, password}}. Errors name keys, never values."""
    if value is None:
        return
    file, key = stack_file(stack_name), f"{PROJECT}:registries"
    if not isinstance(value, dict):
        raise ConfigError([located(file, key, "must map registry names to {username, password}",
                                   "Set it with: " + registry_fix("REGISTRY"))])
    problems = []
    for name, entry in value.items():
        where = f"{key}[{json.dumps(str(name))}]"
        split = _split_registry(str(name), entry)
        if split:
            problems.append(located(file, f"{key}.{name}", f"holds the registry {split!r} split at its dots "
                                    f"({' -> '.join(split.split('.'))}): `--path` reads each dot as a level",
                                    f"Remove it with pulumi config rm --path '{key}.{name}', then set it with: "
                                    + registry_fix(split)))
            continue
        if not registry_host(str(name)) or "/" in str(name):
            problems.append(located(file, where, "is not a registry host name such as ghcr.io, docker.io or "
                                    "registry.example.net:5000", "Use the registry part of the image reference"))
            continue
        if (not isinstance(entry, dict) or set(entry) != {"username", "password"}
                or not all(isinstance(v, str) and v for v in entry.values())):
            problems.append(located(file, where, "must be {username, password}, both non-empty text",
                                    "Set it with: " + registry_fix(name)))
    if problems:
        raise ConfigError(problems)


def check_secrets(stack_name: str, value) -> None:
    """`homefleet:secrets`: {app: {NAME: text}}. Errors name keys, never values."""
    if value is None:
        return
    file, key = stack_file(stack_name), f"{PROJECT}:secrets"
    fix = f"Set each with: pulumi config set --secret --path '{key}.APP.NAME' VALUE"
    if not isinstance(value, dict):
        raise ConfigError([located(file, key, "must map app names to {NAME: secret}", fix)])
    problems = []
    for app, names in value.items():
        if not isinstance(names, dict):
            problems.append(located(file, f"{key}.{app}", "must map variable names to secret values", fix))
            continue
        for name, secret in names.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
                problems.append(located(file, f"{key}.{app}.{name}", "is not an environment variable name",
                                        "Use letters, digits and '_', not starting with a digit"))
            elif not isinstance(secret, str):
                problems.append(located(file, f"{key}.{app}.{name}", "must be text", fix))
    if problems:
        raise ConfigError(problems)
