"""Load and validate a stack's config and the catalog it uses; every error is located."""

import os
from typing import Optional

from .catalog import CatalogError, load_catalog
from .errors import ConfigError, located
from .stack import Stack
from .validation import validate

PROJECT = "homefleet"


def stack_file(stack_name: str) -> str:
    return f"stacks/Pulumi.{stack_name}.yaml"


def load(stack_name: str, raw: dict, project_dir: str = ".", catalog_dir: Optional[str] = None):
    """`raw`: {'hosts': ..., 'apps': ...} as read from the stack config. -> (Stack, catalog)."""
    file = stack_file(stack_name)
    if not raw.get("hosts"):
        raise ConfigError([located(file, f"{PROJECT}:hosts", "no hosts are declared",
                                   "Add at least one host under homefleet:hosts (see docs/stacks.md)")])
    stack = validate(Stack, {"hosts": raw.get("hosts"), "apps": raw.get("apps") or {}}, file, f"{PROJECT}:")
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
