"""Load and validate a stack's config and the catalog it uses; every error is located."""

import difflib
import json
import os
import re
from typing import Optional

from .catalog import CatalogError, load_catalog
from .errors import ConfigError, located
from .imageref import parse_image_ref
from .stack import Stack, registry_host
from .validation import validate

PROJECT = "homefleet"


def stack_file(stack_name: str) -> str:
    return f"stacks/Pulumi.{stack_name}.yaml"


def _machine(name: str, host) -> tuple:
    """What a host name stands for on the network: (address, port); its name when unreadable."""
    if isinstance(host, dict) and isinstance(host.get("address"), str):
        port = host.get("port", 22)
        return host["address"].strip().lower(), port if isinstance(port, int) else 22
    return name, 0


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
            machine = _machine(host, hosts[host])  # two host names for one machine share its vmids
            other = seen.get((machine, vmid))
            if other:
                other_app, other_host = other
                where = (f"host {host}" if other_host == host else
                         f"host {other_host}, the same machine as {host} ({machine[0]}:{machine[1]})")
                problems.append(located(file, f"{PROJECT}:apps.{name}.vmid",
                                        f"{vmid} is also the vmid of app {other_app} on {where}",
                                        "Give each app on a host its own vmid, or leave vmid out to allocate one"))
            seen[(machine, vmid)] = (name, host)
    return problems


def load(stack_name: str, raw: dict, project_dir: str = ".", catalog_dir: Optional[str] = None):
    """`raw`: {'hosts': ..., 'apps': ...} as read from the stack config. -> (Stack, catalog)."""
    file = stack_file(stack_name)
    if not raw.get("hosts"):
        raise ConfigError([located(file, f"{PROJECT}:hosts", "no hosts are declared",
                                   "Add at least one host under homefleet:hosts (see docs/stacks.md)")])
    cross = cross_problems(raw, file)
    raw_apps = raw.get("apps") if isinstance(raw.get("apps"), dict) else {}
    needed = sorted({app["package"] for app in raw_apps.values()
                     if isinstance(app, dict) and isinstance(app.get("package"), str)})
    catalog = {}
    if needed:
        try:
            catalog = load_catalog(catalog_dir or os.path.join(project_dir, "packages"))
        except CatalogError as exc:
            raise ConfigError([str(exc)]) from None
    # unknown packages in the same round as every other problem: a typo is not found only after the rest
    cross += package_problems(raw_apps, catalog, file)
    try:
        stack = validate(Stack, {"hosts": raw.get("hosts"), "apps": raw.get("apps") or {}}, file, f"{PROJECT}:")
    except ConfigError as exc:
        raise ConfigError(exc.problems + cross) from None
    if cross:
        raise ConfigError(cross)
    return stack, catalog


def package_problems(apps: dict, catalog: dict, file: str) -> list:
    """An unknown `package:` with the closest catalog names as the suggestion."""
    problems = []
    for name, app in apps.items():
        package = app.get("package") if isinstance(app, dict) else None
        if not isinstance(package, str) or package in catalog:
            continue
        close = difflib.get_close_matches(package, sorted(catalog), n=3, cutoff=0.6)
        fix = (f"Did you mean {' or '.join(repr(c) for c in close)}? " if close else "") + \
            f"Use one of packages/*.yml ({', '.join(sorted(catalog)[:8])}, ...) or set `image:`"
        problems.append(located(file, f"{PROJECT}:apps.{name}.package", f"no package named {package!r}", fix))
    return problems


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


def unpinned_warnings(stack_name: str, stack: Stack) -> list:
    """A preview warning for each app `image:` on a moving tag (`:latest`, none, `stable`, ...):
    it changes under the app whenever upstream pushes, and only a refreshing preview shows it."""
    out = []
    for name, app in stack.apps.items():
        if not app.image:
            continue
        ref = parse_image_ref(app.image)
        if not ref.is_pinned:
            tag = f"the moving tag {ref.tag!r}" if ref.tag else "no tag (so 'latest')"
            out.append(located(stack_file(stack_name), f"{PROJECT}:apps.{name}.image",
                               f"{app.image!r} has {tag}: each pull may bring another version",
                               "Pin a release tag (e.g. traefik/whoami:v1.10.3) or a digest (image@sha256:...)"))
    return out


def load_all(stack_name: str, raw: dict, registries=None, secrets=None, **kwargs):
    """load() plus the secret-shaped keys' checks, every problem in one ConfigError (one round)."""
    problems, loaded = [], None
    try:
        loaded = load(stack_name, raw, **kwargs)
    except ConfigError as exc:
        problems += exc.problems
    for check, value in ((check_registries, registries), (check_secrets, secrets)):
        try:
            check(stack_name, value)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return loaded
