"""TrueNASApp: one custom (Docker Compose) app on a TrueNAS SCALE 24.10+ host, via `midclt call`.

Identity: host + app name (the TrueNAS app name). Inputs: `host`, `stack`, `app`, `compose`
(the compose text, already converted by homefleet/compose/truenas.py), `running`,
`delete_data`, `sudo` (every command runs as `sudo -n ...`), `generation` (skips version
detection), `ports` (URL schemes per published port).

create: one read first (app.query, docker.status, pool.query: the preflight, see
`_preflight`), then `app.create` with `custom_app: true` and the compose, stamped with the
ownership marker `x-homefleet: {stack, app}`; wait for the job (`core.get_jobs`), then for the
app to settle (providers/truenas_settle.py: from the container states, within a deadline). An
app that crashed, keeps restarting or never gets healthy is removed again and the error
carries the container states and the app's lines of /var/log/app_lifecycle.log.
update: `app.update` (the whole compose) in place; `app.stop`/`app.start` for `running`;
providers/truenas_upgrade.py `apply` records the previous compose and image digests, takes
ZFS snapshots with `snapshot_datasets`, waits for health within `health_timeout`
(providers/truenas_health.py) and reverts an unhealthy update unless `rollback` is false.
Outputs `healthy` (refresh updates it) and `previous` (digests and snapshot names only).
Images: before `app.create`/`app.update` every tag is resolved on the NAS (`app.image.pull`,
then `app.image.query`) and sent as `name:tag@sha256:...` (output `images`), because TrueNAS
never pulls a tag again; the stored compose is compared with its pins taken off.
read: `app.query` + `app.config` (one exec): state and the stored compose, so edits in the
TrueNAS UI, a stop or a delete show on `pulumi refresh`. An empty query is only "deleted"
when `docker.status` says Docker runs. It also resolves the tags again (pull + query): a tag
that moved, or an image not pinned yet, is drift (output `moved`), which the next `up` updates.
delete: `app.delete` with `remove_images: true`, `remove_ix_volumes: delete_data`. Named
volumes cannot be kept (TrueNAS runs `compose down -v`), so an app declaring them is only
deleted with `delete_data`.
Apps without our marker are never updated or deleted.

The compose never travels in a command line (providers/hosts/midclt.py `payload_call`):
the NAS's process list, sudo's log and the TrueNAS audit database see a fixed command.
TrueNAS itself stores the compose (`app.config`), so secrets still belong in files on the
NAS, referenced with `env_file:` (see docs/truenas.md).
"""

import os
import threading
import time
from typing import Optional

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from . import log
from .base import HomefleetProvider, diff_changes, inputs_moved, same_host, target_of
from .errors import HostCommandError, OwnershipError
from .hosts import midclt
from .transport import SshTarget, run
from . import truenas_health, truenas_upgrade
from .truenas_outputs import (_NOT_INPUTS, _bool, _outputs, compose_problems, desired_config,  # noqa: F401
                              drift_of, named_volumes, running_change)

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
CALL_TIMEOUT = 120
JOB_TIMEOUT = 1800          # compose up alone may take 1200 s on the NAS
SETTLE_TIMEOUT = 600        # waiting for STOPPED after app.stop
POLL_FIRST, POLL_MAX = 0.1, 2.0
STABLE_ENV = "HOMEFLEET_TRUENAS_STABLE_SECONDS"
STABLE_DEFAULT = 5.0        # how long an app must look healthy in a row to count as settled


def stable_seconds(props: Optional[dict] = None) -> float:
    """The app's healthSettle (`health_settle`); without it (a provider used directly, a state
    from before the key) the environment's value or 5 s."""
    if props and props.get("health_settle") is not None:
        return float(props["health_settle"])
    try:
        return max(0.2, float(os.environ.get(STABLE_ENV, STABLE_DEFAULT)))
    except ValueError:
        return STABLE_DEFAULT

_versions: dict = {}        # pool key -> version tuple, once per host per process
_versions_lock = threading.Lock()
_app_locks: dict = {}       # (pool key, app) -> lock: the middleware locks per method, not per app
_app_locks_lock = threading.Lock()


# ---------------------------------------------------------------- pure helpers

class _Host:
    """midclt calls for one app on one host; raises HostCommandError naming host, app and step."""

    def __init__(self, props: dict):
        self.props = props
        self.target: SshTarget = target_of(props)
        self.app = props["app"]
        self.sudo = _bool(props.get("sudo"), False)

    def fail(self, step: str, message: str) -> HostCommandError:
        return HostCommandError(self.target.name, f"{step} (app {self.app})", message)

    def call(self, method: str, *args, step: Optional[str] = None, payload: bool = False):
        if payload:      # never in a command line: ps, sudo's log and the audit DB see fixed text
            argv, stdin = midclt.payload_call(method, *args, sudo=self.sudo, version=self.version())
        else:
            argv, stdin = midclt.call_argv(method, *args, sudo=self.sudo), None
        result = run(self.target, argv, stdin=stdin, timeout=CALL_TIMEOUT)
        try:
            return midclt.parse_output(result.stdout, result.stderr, result.exit_code)
        except midclt.MidcltError as exc:
            raise self.fail(step or method, exc.message) from None

    def version(self) -> tuple:
        generation = self.props.get("generation")
        if generation:
            return midclt.parse_version(generation)
        key = self.target.pool_key
        with _versions_lock:
            if key in _versions:
                return _versions[key]
        argv = midclt.call_argv("system.version_short", sudo=self.sudo)
        result = run(self.target, argv, timeout=CALL_TIMEOUT)
        try:
            version = midclt.parse_version(midclt.parse_output(result.stdout, result.stderr, result.exit_code))
        except (midclt.MidcltError, ValueError) as exc:
            raise self.fail("detecting the TrueNAS version (system.version_short)", str(exc)) from None
        if version < midclt.OLDEST:
            raise self.fail("checking the TrueNAS version",
                            f"TrueNAS {midclt.version_text(version)} runs apps on Kubernetes; "
                            "homefleet needs TrueNAS SCALE 24.10 or later (Docker Compose apps)")
        with _versions_lock:
            _versions[key] = version
        return version

    def job(self, method: str, *args, step: str, payload: bool = False, missing_ok: bool = False):
        """Start a job method (no `-j`), poll `core.get_jobs` until it ends; its result.
        `missing_ok`: an `[ENOENT] ... App X does not exist` failure returns None."""
        job_id = midclt.parse_job_id(self.call(method, *args, step=step, payload=payload))
        deadline = time.monotonic() + JOB_TIMEOUT
        delay = POLL_FIRST
        while True:
            job = midclt.job_from(self.call("core.get_jobs", midclt.job_filter(job_id), step=f"{step}: job {job_id}"))
            if job is None:
                raise self.fail(step, f"job {job_id} vanished from core.get_jobs")
            if job.get("state") in midclt.JOB_DONE:
                if job["state"] == "SUCCESS":
                    return job.get("result")
                failure = midclt.job_failure(job)
                if missing_ok and failure.errno_name == "ENOENT":
                    return None
                message = failure.message
                if midclt.LIFECYCLE_LOG in message:
                    message = "\n".join([message, *self.lifecycle_lines()])
                raise self.fail(step, message)
            if time.monotonic() > deadline:
                raise self.fail(step, f"job {job_id} still {job.get('state')} after {JOB_TIMEOUT}s; "
                                      "it keeps running on the NAS")
            time.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX)

    def resolve(self, config: dict) -> dict:
        """{service: `name:tag@sha256:...`} for every unpinned image, resolved on the NAS (which
        reaches the registry): `app.image.pull` each tag (a job; it moves the local tag to what
        the registry names now), then one `app.image.query` for the digests."""
        images = midclt.unpinned_images(config)
        if not images:
            return {}
        for image in sorted(set(images.values())):
            # like the compose, never in a logged argv (the image names are part of it)
            self.job("app.image.pull", {"image": image}, step=f"pulling {image} (app.image.pull)", payload=True)
        entries = self.call("app.image.query", [], midclt.IMAGE_FIELDS,
                            step="reading the image digests (app.image.query)")
        pins = {}
        for service, image in images.items():
            pins[service] = midclt.pinned_ref(image, entries)
            if pins[service] is None:
                raise self.fail("reading the image digests (app.image.query)",
                                f"no local image carries the tag {image} after pulling it (services.{service})")
        return pins

    def read(self, preflight: bool = False) -> Optional[dict]:
        """{"entry", "config", ...} of the app, or None when it does not exist (Docker running).
        With `preflight`, the same exec also checks what a change needs (see `_preflight`)."""
        pool = self.props.get("pool") if preflight else None
        argv = midclt.read_script(self.app, self.sudo, preflight=preflight, pool=pool)
        result = run(self.target, argv, timeout=CALL_TIMEOUT)
        try:
            found = midclt.parse_read(result.stdout, result.stderr)
        except midclt.MidcltError as exc:
            raise self.fail("reading the app (app.query, app.config)", self.role_hint(exc.message)) from None
        if preflight:
            _preflight(self, found, pool)
        if found["entry"] is None:
            if found["docker_error"]:
                raise self.fail("reading the app", "app.query found no app and docker.status, which tells an "
                                "absent app from a stopped Docker, was refused: "
                                + self.role_hint(found["docker_error"]))
            docker = found["docker"] or {}
            if docker.get("status") != "RUNNING":
                raise self.fail("reading the app", f"Docker is not running on the NAS (docker.status: "
                                f"{docker.get('status')} {docker.get('description') or ''}".rstrip()
                                + "), so app.query cannot tell whether the app exists; start the Apps "
                                  "service (Apps > Configuration) and try again")
            return None
        return found

    def role_hint(self, message: str) -> str:
        """A middleware `Not authorized` with the role the account lacks and the fix."""
        if "Not authorized" not in message:
            return message
        return (f"{message.strip()} — the account {self.target.user!r} lacks a middleware role homefleet needs "
                "(APPS_WRITE for apps, DOCKER_READ for docker.status, POOL_READ for pool.query); add it to the "
                "builtin_administrators group (Credentials > Groups), or set sudo: true on the host")

    def settle(self, want_running: bool, config: dict) -> tuple:
        """Poll app.query until the app has settled (truenas_settle.py); (verdict, entry)."""
        if not want_running:
            return "settled", self.wait_stopped()

        def poll() -> dict:
            entry = midclt.app_from(self.call("app.query", midclt.name_filter(self.app), step="waiting for the app"))
            if entry is None:
                raise self.fail("waiting for the app", "the app disappeared while it was deploying")
            return entry

        return truenas_health.wait(poll, config, stable_seconds(self.props), truenas_health.timeout_of(self.props))

    def wait_stopped(self) -> dict:
        deadline = time.monotonic() + SETTLE_TIMEOUT
        delay = POLL_FIRST
        while True:
            entry = midclt.app_from(self.call("app.query", midclt.name_filter(self.app), step="waiting for the app"))
            if entry is None:
                raise self.fail("waiting for the app", "the app disappeared while it was stopping")
            if entry.get("state") == "STOPPED":
                return entry
            if time.monotonic() > deadline:
                raise self.fail("waiting for the app", f"still {entry.get('state')} after {SETTLE_TIMEOUT}s")
            time.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX)

    def lifecycle_lines(self) -> list:
        result = run(self.target, midclt.lifecycle_argv(self.sudo), timeout=CALL_TIMEOUT)
        if not result.ok and "No such file" not in result.stderr:     # absent until the first failure
            return [f"({midclt.LIFECYCLE_LOG} is not readable: {result.stderr.strip()[-200:]})"]
        tail = midclt.lifecycle_tail(result.stdout, self.app, lines=2)
        if not tail:
            return [f"{midclt.LIFECYCLE_LOG} has no line about {self.app} (compose `up` itself succeeded)"]
        return [f"{midclt.LIFECYCLE_LOG}:"] + ["  " + line for line in tail]

    def failure_report(self, entry: dict) -> str:
        lines = [entry.get("__report") or "the app did not settle"]
        lines.extend(self.lifecycle_lines())
        lines.append(f"see the container logs in the TrueNAS UI (Apps > {self.app} > Logs)")
        return "\n".join(lines)


def _preflight(host: _Host, found: dict, pool: Optional[str]) -> None:
    """What a create or an update needs on the NAS, from the read that precedes it; a located
    message with the fix, before anything changes."""
    where = f"host {host.target.name}"
    if found["docker_error"]:
        raise host.fail("checking Docker (docker.status)", host.role_hint(found["docker_error"]))
    docker = found["docker"] or {}
    status = docker.get("status")
    if status == "UNCONFIGURED":
        raise host.fail("checking Docker (docker.status)",
                        f"{where}: Apps are not configured (no pool is chosen for Docker) — in the TrueNAS UI, "
                        "Apps > Configuration > Choose Pool, then run `pulumi up` again")
    if status != "RUNNING":
        raise host.fail("checking Docker (docker.status)",
                        f"{where}: Docker is {status} ({docker.get('description') or 'no description'}) — start "
                        "it in the TrueNAS UI (Apps > Configuration), then run `pulumi up` again")
    if pool:
        if found["pool_error"]:
            raise host.fail(f"checking the pool {pool} (pool.query)", host.role_hint(found["pool_error"]))
        if pool not in (found["pools"] or []):
            names = ", ".join(found["pools"] or []) or "none"
            raise host.fail(f"checking the pool {pool} (pool.query)",
                            f"{where}: there is no pool {pool!r} (pools: {names}); host paths under /mnt/{pool}/ "
                            f"would land on the boot device — set homefleet:hosts.{host.target.name}.pool to an "
                            "existing pool")


def _lock_for(props: dict) -> threading.Lock:
    key = (target_of(props).pool_key, props["app"])
    with _app_locks_lock:
        return _app_locks.setdefault(key, threading.Lock())


def _ownership(host: _Host, config, action: str) -> None:
    owner = midclt.owner_of(config)
    expected = (host.props["stack"], host.app)
    if owner == expected:
        return
    if owner is not None:
        why = f"it belongs to stack {owner[0]} app {owner[1]}"
    elif action == "take over":
        why = (f"its compose has no `{midclt.MARKER_KEY}` marker, so homefleet did not create it "
               "(homefleet never changes what it did not create); rename the homefleet app or remove "
               "the existing one in the TrueNAS UI")
    else:
        why = (f"its compose on the NAS no longer has the `{midclt.MARKER_KEY}` marker (edited outside "
               "homefleet?); put `x-homefleet: {stack: " + expected[0] + ", app: " + expected[1] + "}` back "
               "in the TrueNAS UI, or run `pulumi refresh` to let homefleet forget the app")
    raise OwnershipError(f"host {host.target.name}: refusing to {action} app {host.app}: {why}")


class TrueNASAppProvider(HomefleetProvider):
    # ---------- check ----------
    def check(self, olds: dict, news: dict) -> CheckResult:
        failures = []
        name = news.get("app")
        if isinstance(name, str) and name != UNKNOWN:
            problem = midclt.app_name_problem(name)
            if problem:
                failures.append(CheckFailure("app", f"not a TrueNAS app name: {problem}"))
        compose = news.get("compose")
        if not isinstance(compose, str) and compose != UNKNOWN:
            failures.append(CheckFailure("", "compose must be the text of a Docker Compose file"))
        elif compose != UNKNOWN:
            failures.extend(CheckFailure("", problem) for problem in compose_problems(compose))
        return CheckResult(news, failures)

    # ---------- diff ----------
    def diff(self, _id: str, olds: dict, news: dict) -> DiffResult:
        replaces = []
        if not same_host(olds.get("host", {}), news.get("host", {})):
            replaces.append("host")
        if olds.get("app") != news.get("app"):
            replaces.append("app")
        if news.get("compose") == UNKNOWN:
            return DiffResult(changes=None if not replaces else True, replaces=replaces, delete_before_replace=True)
        changed = self.changed(olds, news)
        moved = inputs_moved(olds, news, _NOT_INPUTS)
        if changed and not moved and olds.get("drift"):
            # Drift alone: the engine cannot name it (this SDK's DiffResult has no detailed
            # diff), so name it here, in the user's words, as the refresh did.
            log.info(news.get("host", {}).get("name", "?"), str(news.get("app")),
                     "update to undo drift: " + "; ".join(olds["drift"]))
        return DiffResult(changes=diff_changes(changed, replaces, moved),
                          replaces=replaces, delete_before_replace=True)

    @staticmethod
    def changed(olds: dict, news: dict) -> list:
        changed = []
        if olds.get("compose_digest") != midclt.digest(desired_config(news)):
            changed.append("compose")
        if olds.get("moved"):           # a refresh found a tag that names other content now
            changed.append("images")
        if running_change(olds, news):
            changed.append("running")
        for key, default in (("delete_data", False), ("sudo", False)):
            if _bool(olds.get(key), default) != _bool(news.get(key), default):
                changed.append(key)
        for key in ("generation", "ports", "host"):
            if olds.get(key) != news.get(key):
                changed.append(key)
        return changed

    # ---------- create ----------
    def create(self, props: dict) -> CreateResult:
        host = _Host(props)
        with _lock_for(props):
            version = host.version()
            current = host.read(preflight=True)
            if current is not None:
                return CreateResult(f"{host.target.name}/{host.app}", self._adopt(host, props, version, current))
            config = desired_config(props)
            pins = host.resolve(config)
            payload = midclt.create_payload(host.app, midclt.with_images(config, pins))
            log.info(host.target.name, host.app, f"creating app (TrueNAS {midclt.version_text(version)})")
            try:
                host.job("app.create", payload, step="app.create", payload=True)
            except HostCommandError as exc:
                if "[EEXIST]" not in str(exc):
                    raise
                return CreateResult(f"{host.target.name}/{host.app}", self._adopt(host, props, version, host.read()))
            want_running = _bool(props.get("running"), True)
            if not want_running:
                host.job("app.stop", host.app, step="app.stop")
            verdict, entry = host.settle(want_running, config)
            if verdict != "settled":
                report = host.failure_report(entry)
                host.job("app.delete", host.app, midclt.delete_options(False), step="removing the failed app",
                         missing_ok=True)
                raise host.fail("app.create", report + "\nthe app was removed again (a failed create leaves "
                                "nothing behind); fix the compose and run `pulumi up` again")
            return CreateResult(f"{host.target.name}/{host.app}", _outputs(props, entry, config, version, pins))

    def _adopt(self, host: _Host, props: dict, version: tuple, current: Optional[dict]) -> dict:
        """The name is taken: continue only if it is our app from an interrupted run."""
        if current is None:
            raise host.fail("app.create", "the app exists and vanished again; run `pulumi up` again")
        _ownership(host, current["config"], "take over")
        log.info(host.target.name, host.app, "the app exists with our marker (an interrupted run); updating it")
        return truenas_upgrade.apply(host, props, current, version)

    # ---------- read ----------
    def read(self, id_: str, props: dict) -> ReadResult:
        host = _Host(props)
        current = host.read()
        if current is None or midclt.owner_of(current["config"]) != (props["stack"], props["app"]):
            return ReadResult("", {})
        version = midclt.parse_version(props.get("truenas_version") or "24.10")
        wanted = desired_config(props) if isinstance(props.get("compose"), str) else {}
        stored = midclt.unpinned(current["config"], wanted)
        outs = _outputs(props, current["entry"], stored, version, midclt.stored_pins(current["config"], wanted))
        outs["moved"] = moved_images(host, wanted, outs["images"])
        outs["drift"] = drift_of(props, stored, outs["state"]) + [
            f"services.{name}.image: {midclt.unpinned_images(wanted)[name]} "
            + (f"now names {pin.split('@', 1)[1]} (the NAS runs {outs['images'][name].split('@', 1)[1]})"
               if name in outs["images"] else "is not pinned to a digest on the NAS")
            for name, pin in outs["moved"]]
        outs["moved"] = [name for name, _ in outs["moved"]]
        if outs["drift"]:
            log.info(host.target.name, host.app, "drift on the NAS (edited in the TrueNAS UI?): "
                     + "; ".join(outs["drift"]) + "; the next `pulumi up` puts it back")
        return ReadResult(id_, outs)

    # ---------- update ----------
    def update(self, _id: str, olds: dict, news: dict) -> UpdateResult:
        host = _Host(news)
        with _lock_for(news):
            version = host.version()
            current = host.read(preflight=True)
            if current is None:
                raise host.fail("updating", "the app no longer exists on the NAS; run `pulumi refresh`")
            _ownership(host, current["config"], "update")
            outs = truenas_upgrade.apply(host, news, current, version)
            outs["previous"] = outs.get("previous") or olds.get("previous")
            return UpdateResult(outs)

    # ---------- delete ----------
    def delete(self, _id: str, props: dict) -> None:
        host = _Host(props)
        with _lock_for(props):
            current = host.read()
            if current is None:
                return
            _ownership(host, current["config"], "delete")
            delete_data = _bool(props.get("delete_data"), False)
            volumes = named_volumes(current["config"])
            if volumes and not delete_data:
                raise host.fail("app.delete", f"the app declares named volumes ({', '.join(volumes)}), which "
                                "TrueNAS deletes with the app (`docker compose down -v`); set `deleteData: true` "
                                "on the app to delete it with its data, or move the data to host paths under "
                                "/mnt/<pool>/ first (docs/truenas.md, Removing an app)")
            log.info(host.target.name, host.app, "deleting app" + (" and its ix-volumes" if delete_data else
                                                                   " (ix-volumes are kept)"))
            # Gone meanwhile (deleted in the UI): the job fails `[ENOENT] None: App X does not exist`.
            host.job("app.delete", host.app, midclt.delete_options(delete_data), step="app.delete", missing_ok=True)


def moved_images(host: _Host, wanted: dict, pins: dict) -> list:
    """[(service, image@digest now)] whose tag names other content than the NAS runs (or that
    the NAS runs unpinned): resolved on the NAS; a refresh that cannot pull says so and goes on."""
    try:
        now = host.resolve(wanted)
    except HostCommandError as exc:
        log.info(host.target.name, host.app, f"could not check the image tags for moves: {exc}")
        return []
    return sorted((name, pin) for name, pin in now.items() if pins.get(name) != pin)


class TrueNASApp(Resource, module="homefleet", name="TrueNASApp"):
    state: pulumi.Output[str]
    healthy: pulumi.Output[bool]
    previous: pulumi.Output[dict]
    urls: pulumi.Output[list]
    published: pulumi.Output[list]
    truenas_version: pulumi.Output[str]
    images: pulumi.Output[dict]

    def __init__(self, name: str, props: dict, opts: Optional[pulumi.ResourceOptions] = None):
        outputs = {"state": None, "urls": None, "published": None, "truenas_version": None,
                   "compose_digest": None, "images": None, "healthy": None, "previous": None}
        super().__init__(TrueNASAppProvider(), name, {**outputs, **props}, opts)
