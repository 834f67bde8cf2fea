"""The `app.*` methods for custom (compose) apps, `docker.status`, `core.get_jobs`, `system.*`.

Each app record in apps.json: `{"name", "version", "config" (the compose as a mapping),
"phase": "up"|"down", "phase_at" (when the last up/down finishes), "created"}`. The state
`app.query` reports is derived at read time: an app whose `up` finished less than
`deploy_seconds` ago is DEPLOYING, then RUNNING (or CRASHED, see workloads.py);
after `down` it is STOPPED.

Semantics follow the reference: a failed create leaves nothing behind; `app.update`
replaces the whole compose, runs `up` only if the app is not STOPPED and does not roll
back; `app.delete` keeps the app's ix-volumes unless `remove_ix_volumes`.
"""

from __future__ import annotations

import errno
import shutil
import time

from . import datasets, files, images, jobs, paths, render, workloads
from .errors import CallError, ValidationErrors
from .schema import Schema, matches
from .timing import deploy_seconds, job_seconds, loop_seconds

APP_VERSION = "1.0.0"
JOB_METHODS = ("app.create", "app.update", "app.delete", "app.start", "app.stop", "app.redeploy",
               "app.image.pull", *files.JOB_METHODS)


class Context:
    def __init__(self, state, version: tuple):
        self.state = state
        self.version = version
        self.schema = Schema(version)

    def authorize(self, role: str) -> None:
        """`$SIM_STATE/truenas_roles` (one role a line) limits the caller's roles, as a
        non-root account's are (middlewared/main.py `check_permission`: `Not authorized`).
        Without the file, or under sudo, the caller is root with every role."""
        roles = paths.caller_roles()
        if roles is not None and role not in roles and not (role.endswith("_READ")
                                                             and role.replace("_READ", "_WRITE") in roles):
            raise CallError("Not authorized", errno.EACCES)


# ---------------------------------------------------------------- lifecycle log

def lifecycle(level: str, func: str, line: int, message: str) -> None:
    stamp = time.strftime("%Y/%m/%d %H:%M:%S")
    path = paths.lifecycle_log()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as log:
            log.write(f"[{stamp}] ({level}) app_lifecycle.{func}():{line} - {message}\n")
    except OSError:
        pass


# ---------------------------------------------------------------- state

def docker_running(ctx: Context) -> bool:
    return ctx.state.docker.get("status") == "RUNNING"


def _phase_state(app: dict, now: float) -> str:
    if app["phase"] == "down":
        return "down"
    return "deploying" if now < app["phase_at"] + deploy_seconds() else "settled"


def _running_config(app: dict):
    """What compose runs: the rendered file read as YAML 1.2 (see render.py)."""
    text = app.get("rendered")
    if text is None:
        return app["config"]
    import yaml
    return yaml.load(text, Loader=render._Yaml12Loader)


def entry(app: dict, ctx: Context, now: float, retrieve_config: bool = False) -> dict:
    since = max(0.0, now - app["phase_at"] - deploy_seconds())
    details = workloads.containers(app["name"], _running_config(app), _phase_state(app, now), since,
                                   loop_seconds())
    state = workloads.app_state(details)
    config = app["config"] if isinstance(app["config"], dict) else {}
    out = {
        "name": app["name"], "id": app["name"], "state": state,
        "upgrade_available": False, "latest_version": APP_VERSION, "image_updates_available": False,
        "custom_app": True, "migrated": False, "human_version": APP_VERSION, "version": APP_VERSION,
        "metadata": {"name": app["name"], "title": app["name"], "train": "stable", "app_version": "custom"},
        "notes": config.get("x-notes"), "portals": config.get("x-portals") or {},
        # A STOPPED app reports the default (empty) workloads (ix_apps/query.py `list_apps`).
        "active_workloads": workloads.workloads([] if state == "STOPPED" else details,
                                                ctx.version >= (25, 4), app["name"]),
    }
    if retrieve_config:
        out["config"] = app["config"]
    return out


def _render(ctx: Context, app: dict) -> None:
    """Write the compose file as TrueNAS does (`update_app_config`) and what containers see."""
    app["rendered"] = render.rendered(app["config"], ctx.version)
    folder = ctx.state.root / "rendered"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{app['name']}.yaml").write_text(app["rendered"])
    import json
    (folder / f"{app['name']}.containers.json").write_text(
        json.dumps(render.container_view(app["rendered"]), indent=1, sort_keys=True))


def _get(ctx: Context, name: str) -> dict:
    """`get_instance`: the app, or ENOENT (also when Docker is not running)."""
    app = ctx.state.apps.get(name) if docker_running(ctx) else None
    if app is None:
        raise ValidationErrors.one(None, f"App {name} does not exist", errno.ENOENT)
    return app


def _up(ctx: Context, app: dict, action: str = "up") -> None:
    """compose up (preceded by a down); raises the middleware's EFAULT when it fails."""
    why = workloads.up_failure(app["config"], app["name"])
    if why:
        lifecycle("ERROR", "compose_action", 56, f"Failed {action!r} action for {app['name']!r} app: {why}")
        raise CallError(f"Failed {action!r} action for {app['name']!r} app. "
                        "Please check /var/log/app_lifecycle.log for more details")
    running = {}
    for service, body in workloads.services(app["config"]).items():
        ref = str(body.get("image", "")) if isinstance(body, dict) else ""
        try:
            entry_ = images.ensure(ctx.state, ref)      # pulls only a missing image, never a tag again
        except RuntimeError as exc:
            lifecycle("ERROR", "compose_action", 56, f"Failed {action!r} action for {app['name']!r} app: {exc}")
            raise CallError(f"Failed {action!r} action for {app['name']!r} app. "
                            "Please check /var/log/app_lifecycle.log for more details")
        running[service] = {"image": ref, "image_id": entry_["id"], "repo_digests": entry_["repo_digests"]}
    app["running_images"] = running
    datasets.app_writes(ctx.state, app["config"])
    folder = ctx.state.root / "rendered"
    folder.mkdir(parents=True, exist_ok=True)
    import json
    (folder / f"{app['name']}.images.json").write_text(json.dumps(running, indent=1, sort_keys=True))
    app["phase"], app["phase_at"] = "up", time.time() + job_seconds()


def _compose_from(ctx: Context, data: dict, prefix: str):
    """The compose mapping from exactly one of the two fields, validated per generation."""
    given = [k for k in ("custom_compose_config", "custom_compose_config_string") if k in data]
    if not given:
        raise ValidationErrors.one(f"{prefix}.custom_compose_config", "This field is required")
    if len(given) == 2:
        raise ValidationErrors.one(f"{prefix}.custom_compose_config_string",
                                   "Only one of these fields should be provided")
    if given[0] == "custom_compose_config":
        return data["custom_compose_config"]
    attr = f"{prefix}.custom_compose_config_string"
    import yaml                    # only the calls that carry a compose pay for it
    try:
        config = yaml.safe_load(data["custom_compose_config_string"])
    except yaml.YAMLError:
        # 24.10/25.04 report it under the create schema's name even for an update
        # (custom_app_utils.py `validate_payload`); the other errors use `prefix`.
        where = attr if ctx.version >= (25, 10) else "app_create.custom_compose_config_string"
        raise ValidationErrors.one(where, "Invalid YAML provided") from None
    if ctx.version >= (25, 10):
        if not isinstance(config, dict):
            raise ValidationErrors.one(attr, "YAML must represent a dictionary/object")
        if "services" not in config:
            raise ValidationErrors.one(attr, 'YAML is missing required "services" key')
    return config


# ---------------------------------------------------------------- job methods

def create(ctx: Context, args: list):
    data = ctx.schema.create(args)
    name = data["app_name"]

    def run():
        # docker.state.validate (plugins/docker/state_management.py)
        if ctx.state.docker.get("status") == "UNCONFIGURED":
            raise CallError("No pool configured for Docker")
        if not docker_running(ctx):
            raise CallError("Docker service is not running")
        if name in ctx.state.apps:
            raise CallError(f"Application with name {name} already exists", errno.EEXIST)
        if not data.get("custom_app"):
            raise ValidationErrors.one("app_create.catalog_app", "This field is required")
        config = _compose_from(ctx, data, "app_create")
        app = {"name": name, "version": APP_VERSION, "config": config, "phase": "down",
               "phase_at": time.time(), "created": time.time()}
        _render(ctx, app)
        _up(ctx, app)                   # raises before the app is stored: nothing is left behind
        ctx.state.apps[name] = app
        ctx.state.app_mounts(name).mkdir(parents=True, exist_ok=True)
        return entry(app, ctx, app["phase_at"])

    return _job(ctx, "app.create", args, run, f"{name!r} installed successfully")


def update(ctx: Context, args: list):
    name, data = ctx.schema.update(args)

    def run():
        app = _get(ctx, name)
        config = _compose_from(ctx, data, "app_update")
        app["config"] = config            # stored before `up`, never rolled back
        _render(ctx, app)
        if app["phase"] != "down":
            _up(ctx, app)
        return entry(app, ctx, app["phase_at"])

    return _job(ctx, "app.update", args, run, f"Update completed for {name!r}")


def delete(ctx: Context, args: list):
    name, options = ctx.schema.delete(args)

    def run():
        _get(ctx, name)
        if options["force_remove_custom_app"] and ctx.version < (25, 4):
            raise CallError("force_remove_custom_app is not supported", errno.EINVAL)
        del ctx.state.apps[name]
        if options["remove_ix_volumes"]:
            shutil.rmtree(ctx.state.app_mounts(name), ignore_errors=True)
        return True

    return _job(ctx, "app.delete", args, run, f"Deleted {name!r}")


def start(ctx: Context, args: list):
    name = ctx.schema.name_only("app.start", args)

    def run():
        _up(ctx, _get(ctx, name))
        return None

    return _job(ctx, "app.start", args, run, f"Started {name!r}")


def stop(ctx: Context, args: list):
    name = ctx.schema.name_only("app.stop", args)

    def run():
        app = _get(ctx, name)
        app["phase"], app["phase_at"] = "down", time.time()
        return None

    return _job(ctx, "app.stop", args, run, f"Stopped {name!r}")


def redeploy(ctx: Context, args: list):
    name = ctx.schema.name_only("app.redeploy", args)

    def run():
        app = _get(ctx, name)
        _up(ctx, app)
        return entry(app, ctx, app["phase_at"])

    return _job(ctx, "app.redeploy", args, run, f"Redeployed {name!r}")


def image_pull(ctx: Context, args: list):
    """`app.image.pull {"image": ..., "auth_config": ...}` (apps_images/images.py `pull`)."""
    ctx.schema.arg_count("app.image.pull", args, 1, 1)
    data = args[0]
    if not isinstance(data, dict):
        raise ValidationErrors.one("image_pull", ctx.schema.not_type("dict"))
    extra = [k for k in data if k not in ("image", "auth_config")]
    if extra:
        raise ValidationErrors.one(f"image_pull.{extra[0]}", ctx.schema.extra_key())
    if not isinstance(data.get("image"), str):
        raise ValidationErrors.one("image_pull.image", ctx.schema.required() if "image" not in data
                                   else ctx.schema.not_type("str"))
    ref = data["image"]

    def run():
        if not docker_running(ctx):
            raise CallError("Docker service is not running")
        try:
            images.pull(ctx.state, ref)
        except RuntimeError as exc:
            raise CallError(f"Failed to pull {ref!r} image: {exc}")
        return None

    return _job(ctx, "app.image.pull", args, run, f"{ref!r} image pulled successfully")


def image_query(ctx: Context, args: list):
    filters, options = ctx.schema.filters("app.image.query", args)
    if not docker_running(ctx):
        return []
    found = [e for e in (images.view(i) for i in ctx.state.images) if matches(e, filters)]
    select = options.get("select")
    return [{k: e[k] for k in select if k in e} for e in found] if select else found


def _job(ctx: Context, method: str, args: list, run, description: str) -> int:
    try:
        outcome = run()
    except (ValidationErrors, CallError) as exc:
        outcome = exc
    return jobs.submit(ctx.state, method, args, outcome, description)


# ---------------------------------------------------------------- plain methods

def query(ctx: Context, args: list):
    filters, options = ctx.schema.filters("app.query", args)
    if not docker_running(ctx):
        return []
    now = time.time()
    extra = options.get("extra") or {}
    found = [entry(app, ctx, now, bool(extra.get("retrieve_config")))
             for _, app in sorted(ctx.state.apps.items())]
    return [e for e in found if matches(e, filters)]


def config(ctx: Context, args: list):
    name = ctx.schema.name_only("app.config", args)
    return _get(ctx, name)["config"]


def docker_status(ctx: Context, args: list):
    ctx.schema.arg_count("docker.status", args, 0, 0)
    return {"status": ctx.state.docker.get("status", "RUNNING"),
            "description": ctx.state.docker.get("description", "")}


def pool_query(ctx: Context, args: list):
    filters, options = ctx.schema.filters("pool.query", args)
    found = [{"id": i + 1, "name": name, "status": "ONLINE", "healthy": True, "path": f"/mnt/{name}"}
             for i, name in enumerate(ctx.state.pools)]
    found = [e for e in found if matches(e, filters)]
    select = options.get("select")
    return [{k: e[k] for k in select if k in e} for e in found] if select else found


def get_jobs(ctx: Context, args: list):
    filters, _ = ctx.schema.filters("core.get_jobs", args)
    now = time.time()
    return [view for view in (jobs.view(job, now) for job in ctx.state.jobs) if matches(view, filters)]


def version(ctx: Context, args: list):
    ctx.schema.arg_count("system.version", args, 0, 0)
    text = paths.version()
    return f"TrueNAS-SCALE-{text}" if ctx.version < (25, 4) else f"TrueNAS-{text}"


def version_short(ctx: Context, args: list):
    ctx.schema.arg_count("system.version_short", args, 0, 0)
    return paths.version()


def ping(ctx: Context, args: list):
    return "pong"


# Roles each method needs (the `roles=` of its `@api_method`; APPS_WRITE includes APPS_READ).
ROLES = {
    "app.create": "APPS_WRITE", "app.update": "APPS_WRITE", "app.delete": "APPS_WRITE",
    "app.start": "APPS_WRITE", "app.stop": "APPS_WRITE", "app.redeploy": "APPS_WRITE",
    "app.query": "APPS_READ", "app.config": "APPS_READ", "docker.status": "DOCKER_READ",
    "pool.query": "POOL_READ", "app.image.pull": "APPS_WRITE", "app.image.query": "APPS_READ",
    **datasets.ROLES, **files.ROLES,
}

METHODS = {
    "app.create": create, "app.update": update, "app.delete": delete, "app.start": start,
    "app.stop": stop, "app.redeploy": redeploy, "app.query": query, "app.config": config,
    "docker.status": docker_status, "pool.query": pool_query, "core.get_jobs": get_jobs, "system.version": version,
    "system.version_short": version_short, "core.ping": ping,
    "app.image.pull": image_pull, "app.image.query": image_query,
    **datasets.methods(), **files.METHODS,
}
