"""Read a malformed stack file or package spec the way homefleet does, and return the error
the user sees (the message text, never a traceback).

Stack files: their `config:` values are handed over as Pulumi does (objects as JSON, read
back with `Config.get_object`), then go through what `__main__.py` runs before any resource
exists: load (validate), the registry and secret checks, the plan, the TrueNAS plan.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from homefleet.catalog import CatalogError, load_package
from homefleet.config import PROJECT, check_registries, check_secrets, load, stack_file
from homefleet.errors import ConfigError, located
from homefleet.plan import make_plan
from homefleet.plan_truenas import plan_truenas

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
REPO = CORPUS.parents[1]


class _NotJson(Exception):
    pass


def _get_object(config: dict, key: str):
    """pulumi.Config.get_object: a string value must be JSON (else ConfigTypeError)."""
    value = config.get(f"{PROJECT}:{key}")
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    try:
        return json.loads(text)
    except ValueError:
        raise _NotJson(key) from None


def stack_error(path: Path) -> str:
    """The message `pulumi preview` shows for this stack file (after 'invalid stack config:')."""
    name = path.stem
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    try:
        def obj(key):
            try:
                return _get_object(config, key)
            except _NotJson:
                raise ConfigError([located(stack_file(name), f"{PROJECT}:{key}", "is not a mapping of keys",
                                           "Write it as YAML keys under the name (see docs/stacks.md)")]) from None

        stack, catalog = load(name, {"hosts": obj("hosts"), "apps": obj("apps")}, project_dir=str(REPO))
        check_registries(name, obj("registries"))
        check_secrets(name, obj("secrets"))
        secrets = obj("secrets") or {}
        secret_names = {app: sorted(v) for app, v in secrets.items() if isinstance(v, dict)}
        plan = make_plan(name, stack, catalog, project_dir=str(REPO), secret_names=secret_names)
        plan_truenas(name, stack, plan.targets, project_dir=str(REPO), secret_names=secret_names)
    except ConfigError as exc:
        return str(exc)
    return ""


def package_error(path: Path) -> str:
    try:
        load_package(path, path.parent)
    except CatalogError as exc:
        return str(exc)
    return ""


def cases() -> list:
    """(kind, path) of every corpus case, stacks then packages."""
    return ([("stack", p) for p in sorted((CORPUS / "stacks").glob("*.yaml"))]
            + [("package", p) for p in sorted((CORPUS / "packages").glob("*.yml"))])


def error_of(kind: str, path: Path) -> str:
    return stack_error(path) if kind == "stack" else package_error(path)
