"""Compose apps on Proxmox hosts -> CtPlans (one per service) and their templates.

An app is a compose app when the stack says `compose: <path>` (relative to the project
folder) or its package is a compose package (`packages/compose/*.yml`). Addresses are
allocated per host over every compose service on it, so two apps never share one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..catalog import DEFAULT_PACKAGES_DIR
from .acknowledge import filter_warnings
from .files import ProjectFiles
from .read import ComposeErrors, load_compose
from .addresses import allocate, pool
from .proxmox import app_problems, convert, pinned_address
from ..config import PROJECT, stack_file
from ..errors import ConfigError, located
from ..imageref import parse_image_ref
from ..plan_types import AppFilesPlan, CtPlan, TemplatePlan, pull_ref, template_name


def compose_source(name: str, app, catalog: dict, project_dir: Path, packages_dir: Path) -> Optional[tuple]:
    """(path, display, the folder its files must stay in) of the app's compose file, or None."""
    if app.compose:
        return project_dir / app.compose, app.compose, project_dir
    package = catalog.get(app.package) if app.package else None
    if package is not None and package.compose:
        return package.compose_path(packages_dir), f"packages/{package.compose}", packages_dir
    return None


def plan_compose_apps(stack_name: str, stack, catalog: dict, targets: dict, templates: dict,
                      project_dir=".", packages_dir=None, secret_names: Optional[dict] = None) -> tuple:
    """-> (CtPlans in start order, warnings, AppFilesPlans). Adds the templates it needs to `templates`.

    Raises ConfigError listing every problem of every compose app.
    """
    project_dir = Path(project_dir)
    packages_dir = Path(packages_dir) if packages_dir else DEFAULT_PACKAGES_DIR
    file = stack_file(stack_name)
    secret_names = secret_names or {}
    problems: list = []
    warnings: list = []
    loaded: dict = {}
    boundaries: dict = {}
    app_warnings: dict = {}  # app -> its compose file's warnings, acknowledged ones dropped at the end
    app_dirs: list = []
    for name, app in stack.apps.items():
        host = stack.hosts[app.host]
        source = compose_source(name, app, catalog, project_dir, packages_dir)
        if host.kind != "proxmox" or source is None:
            continue
        where = f"{PROJECT}:apps.{name}"
        problems += app_problems(app, file, where)
        path, display, root = source
        if app.compose and not path.is_file():
            problems.append(located(file, f"{where}.compose", f"file {app.compose!r} not found",
                                    "Write the path relative to the project folder (where Pulumi.yaml is), "
                                    "e.g. stacks/compose/<app>.yml"))
            continue
        files = ProjectFiles(root, app.allowFilesOutsideProject, where)
        hint = (f"Set it in the .env file beside {display}, in {where}.env, or as a secret: "
                f"pulumi config set --secret --path '{PROJECT}:secrets.{name}.{{name}}' <value>")
        try:
            compose = load_compose(path, display=display, variables=app.env,
                                   secrets=secret_names.get(name) or (), unset_fix=hint, files=files)
        except ComposeErrors as exc:
            problems += exc.problems
            if exc.compose is not None:  # what Proxmox cannot do goes in the same report
                partial = convert(stack_name, name, exc.compose, app.host, host, app,
                                  catalog.get(app.package) if app.package else None, {}, files)
                problems += partial.problems
            continue
        except ConfigError as exc:
            problems += exc.problems
            continue
        app_warnings[name] = list(compose.warnings)
        loaded[name] = compose
        boundaries[name] = files
    addresses, more_problems, more_warnings = _addresses(stack, loaded, file)
    problems += more_problems
    warnings += more_warnings
    cts: list = []
    for name, compose in loaded.items():
        app = stack.apps[name]
        package = catalog.get(app.package) if app.package else None
        plan = convert(stack_name, name, compose, app.host, stack.hosts[app.host], app, package,
                       addresses.get(name, {}), boundaries[name])
        problems += plan.problems
        warnings += filter_warnings(app_warnings.pop(name) + plan.warnings, compose.display, app.acknowledge,
                                    f"{file}: {PROJECT}:apps.{name}")
        app_dir = None
        if plan.app_dir is not None:
            app_dir = f"{name}-files"
            app_dirs.append(AppFilesPlan(app_dir, app.host, name, {
                "host": targets[app.host], "stack": stack_name, "app": name, **plan.app_dir,
                "delete_data": app.deleteData}))
        for ct in plan.cts:
            tmpl = template_name(app.host, ct.image)
            if tmpl not in templates:
                templates[tmpl] = TemplatePlan(tmpl, app.host, {
                    "host": targets[app.host],
                    "image": str(parse_image_ref(ct.image).normalized),
                    "pull_ref": pull_ref(ct.image, stack.hosts[app.host]),
                    "storage": stack.hosts[app.host].templateStorage,
                })
            cts.append(CtPlan(ct.name, app.host, name, tmpl, {"host": targets[app.host], **ct.spec}, [],
                              (package.notes or "") if package else "", depends_on=list(ct.depends_on),
                              secret_env=dict(ct.secret_env), service=ct.service, command=ct.command,
                              app_dir=app_dir))
    problems += _clashes(stack, cts, file)
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    return cts, list(dict.fromkeys(warnings)), app_dirs


def _addresses(stack, loaded: dict, file: str) -> tuple:
    """{app: {service: address}}, problems, warnings — per host, over all its compose services."""
    result: dict = {}
    problems, warnings = [], []
    by_host: dict = {}
    for name, compose in loaded.items():
        by_host.setdefault(stack.apps[name].host, []).append(name)
    for host_name, names in by_host.items():
        network = stack.hosts[host_name].composeNetwork
        if network is None:
            for name in names:
                count = len(loaded[name].services)
                if count > 1:
                    problems.append(located(
                        file, f"{PROJECT}:hosts.{host_name}.composeNetwork",
                        f"is not set, and the compose app {name} has {count} services that must reach each other",
                        "Add composeNetwork: {cidr: <the bridge's subnet>, gateway: <router>, range: <FIRST-LAST, "
                        "outside your DHCP range>} to the host (docs/compose.md)"))
            continue
        first, last = network.bounds()
        wanted = [(name, service.name, pinned_address(service))
                  for name in names for service in loaded[name].services.values()]
        allocation = allocate(pool(network.cidr, network.gateway, first, last), wanted)
        for app, service, message, fix in allocation.problems:
            problems.append(located(loaded[app].display, f"services.{service}.x-homefleet.ip", message, fix))
        for app, service, message, fix in allocation.warnings:
            warnings.append(located(loaded[app].display, f"services.{service} (app {app})", message, fix))
        for (app, service), address in allocation.addresses.items():
            result.setdefault(app, {})[service] = address
    return result, problems, warnings


def _clashes(stack, cts: list, file: str) -> list:
    """CT names that are also app names; vmids taken twice on one host."""
    problems = []
    for ct in cts:
        if ct.name in stack.apps and ct.name != ct.app:
            problems.append(located(file, f"{PROJECT}:apps.{ct.name}",
                                    f"has the same name as service {ct.service} of the compose app {ct.app} "
                                    f"({ct.name})",
                                    "Rename one of them"))
    seen: dict = {(app.host, app.vmid): name for name, app in stack.apps.items() if app.vmid is not None}
    for ct in cts:
        vmid = ct.props.get("vmid")
        if vmid is None:
            continue
        other = seen.get((ct.host, vmid))
        if other is not None:
            problems.append(located(file, f"{PROJECT}:apps.{ct.app}",
                                    f"service {ct.service} pins vmid {vmid}, which {other} also uses on host {ct.host}",
                                    "Change one of the vmids"))
        seen[(ct.host, vmid)] = ct.name
    return problems

