"""Apps placed on TrueNAS hosts -> TrueNASApp inputs (pure: no Pulumi resources, no SSH).

On a `kind: truenas` host an app is a Docker Compose file (`compose:`), run as a TrueNAS
custom app named like the app. Keys that only mean something for a Proxmox CT are refused,
so a setting is never silently ignored. Compose variables come from the app's `env:` and
the `.env` beside the compose file.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .config import PROJECT, stack_file
from .errors import ConfigError, located
from .plan_types import app_or_host
from .stack import App, Stack
from .compose.acknowledge import filter_warnings
from .compose.files import ProjectFiles
from .compose.truenas import convert, dump

# Keys of an app that mean something on a TrueNAS host; every other key set is an error.
TRUENAS_KEYS = {"host", "compose", "env", "running", "deleteData", "ports", "allowSystemPaths",
                "allowFilesOutsideProject", "acknowledge", "healthTimeout", "healthSettle", "keepBackups",
                "rollback", "snapshotDatasets"}
APP_NAME_RULE = ("TrueNAS app names are 1-40 lowercase letters, digits and '-', start with a letter "
                 "and do not end with '-'")


@dataclass
class TrueNASAppPlan:
    name: str          # the Pulumi resource name (the app name)
    host: str
    app: str
    props: dict
    warnings: list = field(default_factory=list)
    # Named volumes die with the app (TrueNAS runs `compose down -v`): unless deleteData is
    # set, the resource is protected, so removing the app (or moving it to another host)
    # fails in the preview, before anything changes (docs/truenas.md, Removing an app).
    protect: bool = False
    files: Optional[dict] = None   # TrueNASAppFiles inputs: the app's folder under appRoot (relative binds)


def _app_problems(file: str, name: str, app: App, host_name: str) -> list:
    key = f"{PROJECT}:apps.{name}"
    problems = []
    if not app.compose:
        given = next((k for k in ("package", "image", "template") if getattr(app, k)), "")
        problems.append(located(file, f"{key}.{given or 'compose'}",
                                f"host {host_name} is a TrueNAS host, where apps are Docker Compose files",
                                "Set compose: <file> for this app, or place it on a Proxmox host"))
    for extra in sorted(set(app.model_fields_set) - TRUENAS_KEYS - {"package", "image", "template"}):
        problems.append(located(file, f"{key}.{extra}", f"is not used on the TrueNAS host {host_name}",
                                "Remove it (TrueNAS apps are configured in their compose file)"))
    if len(name) > 40 or name.endswith("-"):
        problems.append(located(file, key, f"{name!r} is not a TrueNAS app name", APP_NAME_RULE))
    return problems


def plan_truenas(stack_name: str, stack: Stack, targets: dict, project_dir: str = ".",
                 secret_names: Optional[dict] = None) -> list:
    """One TrueNASAppPlan per app on a TrueNAS host; ConfigError lists every problem of every app.

    `secret_names`: {app: [names]} of homefleet:secrets; TrueNAS apps may not use them.
    """
    file = stack_file(stack_name)
    plans, problems = [], []
    for name, host in sorted(stack.hosts.items()):
        root = host.appRoot or ""
        if host.kind == "truenas" and root and (not root.startswith("/mnt/") or root.startswith("/mnt/.ix-apps")
                                                 or ".." in root.split("/")):
            problems.append(located(file, f"{PROJECT}:hosts.{name}.appRoot", f"{root!r} is not under /mnt/: "
                                    "TrueNAS creates folders only in a pool (filesystem.mkdir: path not permitted)",
                                    "Write a folder in a pool, e.g. appRoot: /mnt/tank/apps"))
    if problems:
        raise ConfigError(problems)
    for name, app in sorted(stack.apps.items()):
        host = stack.hosts[app.host]
        if host.kind != "truenas":
            continue
        found = _app_problems(file, name, app, app.host)
        if found:
            problems += found
            continue
        if not (Path(project_dir) / app.compose).is_file():
            problems.append(located(file, f"{PROJECT}:apps.{name}.compose", f"file {app.compose!r} not found",
                                    "Write the path relative to the project folder (where Pulumi.yaml is), "
                                    "e.g. stacks/compose/<app>.yml"))
            continue
        try:
            converted = convert(Path(project_dir) / app.compose, app.compose, app=name,
                                app_key=f"{PROJECT}:apps.{name}", variables=app.env, pool=host.pool,
                                allow_system_paths=app.allowSystemPaths, app_root=host.appRoot,
                                host_key=f"{PROJECT}:hosts.{app.host}",
                                secrets=(secret_names or {}).get(name, ()), generation=host.midcltGeneration,
                                files=ProjectFiles(Path(project_dir), app.allowFilesOutsideProject,
                                                   f"{PROJECT}:apps.{name}"))
        except ConfigError as exc:
            problems += exc.problems
            continue
        props = {
            "host": targets[app.host],
            "stack": stack_name,
            "app": name,
            "compose": dump(converted.config),
            "running": app.running,
            "delete_data": app.deleteData,
            "sudo": host.sudo,
            "generation": host.midcltGeneration,
            "pool": host.pool,
            "ports": [{"port": p.port, "scheme": p.scheme} for p in app.ports] if app.ports else None,
            "health_timeout": app.healthTimeout,
            "health_settle": app_or_host(app, host, "healthSettle"),
            "rollback": app.rollback,
            "snapshot_datasets": app.snapshotDatasets,
            "keep_backups": app_or_host(app, host, "keepBackups"),
        }
        protect = bool(converted.named_volumes) and not app.deleteData
        files = None
        if converted.app_dir is not None:
            files = {**converted.app_dir, **{k: props[k] for k in ("host", "stack", "app", "delete_data", "sudo",
                                                                    "generation") if props.get(k) is not None}}
        plans.append(TrueNASAppPlan(name, app.host, name, {k: v for k, v in props.items() if v is not None},
                                    filter_warnings(converted.warnings, app.compose, app.acknowledge,
                                                    f"{file}: {PROJECT}:apps.{name}"), protect, files))
    if problems:
        raise ConfigError(problems)
    return plans


def warnings_of(plans: list) -> list:
    return [w for p in plans for w in p.warnings]
