"""TrueNAS apps through the real Pulumi engine where a real NAS differs from our first reading
of it (issue 13 items 7-10, the TrueNAS preflight; issue 19 items 4 and 11). The simulator
behaves as the middleware does (docs/dev/simulator.md cites the source for each):

* it re-writes the compose with PyYAML per version and reads it back as YAML 1.2, so a
  string like `1e3` reaches the container as `1000` on 24.10/25.04;
* a crash loop under `restart: always` flips RUNNING/STOPPED, a failing healthcheck stays
  DEPLOYING; neither is ever CRASHED;
* its sudo logs every argv as JSON (and what the sudo'd command executes);
* job errors read `[ENOENT] None: ...`, ports are listed for 0.0.0.0 and ::, docker.status
  needs DOCKER_READ, Docker may be unconfigured and the pool absent.

nas1 runs 24.10 as root, nas2 25.04 behind `sudo -n`.
"""

from __future__ import annotations

import json

import pytest
import yaml

from sim.engine import LocalProject
from sim.testing import tool_calls
from sim.truenas import store

from .nas_calls import NasCalls
from ..engine.helpers import hosts_config

pytestmark = pytest.mark.engine

STACK = "real"
IMAGE = "docker.io/library/nginx:1.27.3"
NUMBERS = f"""\
services:
  web:
    image: {IMAGE}
    restart: unless-stopped
    ports: ["8091:80"]
    environment:
      RELEASE: "1e3"
      MODE: "0o17"
      NAME: plain
    labels:
      build: "8E1"
    command: ["nginx", "-g", "daemon off;", "1e3"]
"""
LOOP = """\
services:
  loop:
    image: docker.io/library/crash-test:1.0
    restart: always
"""
UNHEALTHY = f"""\
services:
  web:
    image: {IMAGE}
    restart: unless-stopped
    labels: {{homefleet.test/unhealthy: "true"}}
    healthcheck: {{test: ["CMD", "true"], interval: 1s, timeout: 1s, retries: 1}}
"""
QUIET = f"""\
services:
  web:
    image: {IMAGE}
    restart: unless-stopped
    environment:
      GREETING: canary-7f3a-${{ROUND:-one}}
"""
PLAIN = f"services:\n  web:\n    image: {IMAGE}\n    restart: unless-stopped\n"
NORESTART = f"services:\n  web:\n    image: {IMAGE}\n"
VOLUMES = f"""\
services:
  db:
    image: {IMAGE}
    restart: unless-stopped
    volumes: ["data:/data"]
volumes:
  data: {{}}
"""


class Env(NasCalls):
    def __init__(self, fleet, project: LocalProject):
        self.fleet = fleet
        self.project = project
        self.nas1, self.nas2 = fleet["nas1"], fleet["nas2"]
        self.hosts = hosts_config(fleet)
        for entry in self.hosts.values():
            entry["pool"] = "tank"
        self.hosts["nas2"]["sudo"] = True
        self.apps: dict = {}

    def write(self, name: str, text: str) -> None:
        path = self.project.workdir / "compose" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)

    def stack(self, apps: dict, hosts: dict | None = None) -> None:
        self.apps = apps
        self.project.write_stack(STACK, {"homefleet:hosts": hosts or self.hosts, "homefleet:apps": apps})

    def pulumi(self, *args, ok: bool = True):
        run = self.project.pulumi(*args, stack=STACK)
        if ok:
            assert run.ok, str(run)
        return run

    def outputs(self) -> dict:
        state = json.loads(self.project.state_file(STACK).read_text())
        stack = next(r for r in state["checkpoint"]["latest"]["resources"] if r["type"] == "pulumi:pulumi:Stack")
        return stack["outputs"]["apps"]

    def recorded(self, name: str) -> dict:
        state = json.loads(self.project.state_file(STACK).read_text())
        for res in state["checkpoint"]["latest"].get("resources") or []:
            if res["type"].endswith(":TrueNASApp") and res["urn"].endswith(f"::{name}"):
                return res["outputs"]
        raise KeyError(name)

    def methods(self, host, since: int = 0) -> list:
        """Middleware methods called since the `since`-th tool call (by midclt or its library)."""
        return [c["argv"][1] for c in tool_calls(host)[since:]
                if c["tool"] in ("midclt", "truenas_api_client") and c["argv"][:1] == ["call"]]

    def mark(self, host) -> int:
        return len(tool_calls(host))


@pytest.fixture(scope="module")
def env(nas_fleet, tmp_path_factory):
    e = Env(nas_fleet, LocalProject.create(tmp_path_factory.mktemp("truenas-real")))
    for name, text in (("numbers.yml", NUMBERS), ("loop.yml", LOOP), ("unhealthy.yml", UNHEALTHY),
                       ("quiet.yml", QUIET), ("plain.yml", PLAIN), ("norestart.yml", NORESTART),
                       ("volumes.yml", VOLUMES)):
        e.write(name, text)
    return e


def _all_strings_quoted(text: str) -> bool:
    def walk(node) -> bool:
        if isinstance(node, yaml.MappingNode):
            return all(walk(k) and walk(v) for k, v in node.value)
        if isinstance(node, yaml.SequenceNode):
            return all(walk(v) for v in node.value)
        resolved = yaml.safe_load(node.value) if node.style is None else None
        return node.style in ('"', "|") or not isinstance(resolved, str)
    return walk(yaml.compose(text))


# ---------------------------------------------------------------- item 7: strings stay strings

def test_number_like_strings_reach_the_containers_as_written(env):
    env.stack({"nums": {"host": "nas1", "compose": "compose/numbers.yml"}})
    mark = env.mark(env.nas1)
    run = env.pulumi("up", "--yes")
    assert "services.web.command[3]: '1e3' reaches the container as a number on TrueNAS 24.10 and 25.04" \
        in run.stdout
    seen = json.loads((env.nas1.state / "sim/truenas/rendered/nums.containers.json").read_text())["web"]
    assert seen["environment"] == {"RELEASE": "1e3", "MODE": "0o17", "NAME": "plain"}
    assert seen["labels"] == {"build": "8E1"}
    sent = [c["argv"] for c in tool_calls(env.nas1)[mark:]
            if c["tool"] == "truenas_api_client" and c["argv"][1] == "app.create"]
    assert len(sent) == 1
    assert _all_strings_quoted(json.loads(sent[0][2])["custom_compose_config_string"])
    # item 10: Docker lists the port for 0.0.0.0 and ::; the outputs name it once
    assert env.recorded("nums")["published"] == [{"port": 8091, "protocol": "tcp", "host_ip": "0.0.0.0"}]
    assert env.outputs()["nums"]["urls"] == ["http://127.0.0.1:8091"]
    env.pulumi("preview", "--expect-no-changes")


# ---------------------------------------------------------------- item 8: settling

def test_a_crash_loop_under_restart_always_fails_the_create(env):
    apps = dict(env.apps)
    env.stack({**apps, "looper": {"host": "nas1", "compose": "compose/loop.yml"}})
    env.apps = apps                          # whatever happens, the next tests do not carry it
    run = env.pulumi("up", "--yes", ok=False)
    text = run.stdout + run.stderr
    assert not run.ok
    assert "host nas1: app.create (app looper) failed" in text
    assert "the app keeps restarting: loop exited and restarted again and again" in text
    assert "/var/log/app_lifecycle.log has no line about looper" in text, text
    assert env.app(env.nas1, "looper") is None                  # removed again: nothing left behind


def test_a_failing_healthcheck_fails_within_the_deadline(env):
    env.stack({**env.apps, "sick": {"host": "nas1", "compose": "compose/unhealthy.yml", "healthTimeout": 7}})
    run = env.pulumi("up", "--yes", ok=False)
    text = run.stdout + run.stderr
    assert not run.ok
    assert "web did not become healthy within 7s (its healthcheck keeps failing" in text
    assert env.app(env.nas1, "sick") is None
    env.stack({k: v for k, v in env.apps.items() if k != "sick"})


def test_a_service_without_restart_is_warned_about(env):
    env.stack({**env.apps, "norestart": {"host": "nas1", "compose": "compose/norestart.yml"}})
    run = env.pulumi("preview")
    assert "compose/norestart.yml: services.web.restart: is not set: TrueNAS starts Docker after a reboot" \
        in run.stdout
    env.stack({k: v for k, v in env.apps.items() if k != "norestart"})


# ---------------------------------------------------------------- item 9: nothing in a logged argv

def test_sudo_and_the_process_list_never_see_the_compose(env):
    sudo_log = env.nas2.state / "sudo.log"
    before = sudo_log.read_text() if sudo_log.exists() else ""
    env.stack({**env.apps, "quiet": {"host": "nas2", "compose": "compose/quiet.yml"}})
    env.pulumi("up", "--yes")
    env.stack({**env.apps, "quiet": {"host": "nas2", "compose": "compose/quiet.yml", "env": {"ROUND": "two"}}})
    env.pulumi("up", "--yes")
    assert env.midclt(env.nas2, "app.config", "quiet")["services"]["web"]["environment"]["GREETING"] \
        == "canary-7f3a-two"
    logged = sudo_log.read_text()[len(before):]
    for word in ("canary-7f3a", "services", "GREETING", IMAGE):
        assert word not in logged
    events = [json.loads(line)["accept"] for line in logged.splitlines()]
    assert events and any(e["runargv"][:2] == ["python3", "-c"] for e in events)
    execs = [c for c in tool_calls(env.nas2) if c["tool"] != "truenas_api_client"]    # every exec'd argv
    assert not any("canary-7f3a" in json.dumps(c["argv"]) for c in execs)


# ---------------------------------------------------------------- item 10 and the preflight

def test_missing_roles_are_named_before_anything_changes(env):
    roles = env.nas1.state / "truenas_roles"
    for granted, lacking in (("APPS_WRITE\nPOOL_READ\n", "DOCKER_READ"), ("DOCKER_READ\nPOOL_READ\n", "APPS_WRITE")):
        roles.write_text(granted)
        try:
            env.stack({**env.apps, "roles": {"host": "nas1", "compose": "compose/plain.yml"}})
            mark = env.mark(env.nas1)
            run = env.pulumi("up", "--yes", ok=False)
        finally:
            roles.unlink()
        text = run.stdout + run.stderr
        assert not run.ok and "[EACCES] Not authorized" in text, lacking
        assert f"the account 'root' lacks a middleware role homefleet needs" in text
        assert "builtin_administrators" in text and lacking in text
        assert "app.create" not in env.methods(env.nas1, mark)
    env.stack({k: v for k, v in env.apps.items() if k != "roles"})


def test_unconfigured_docker_fails_before_anything_changes(env):
    store.set_docker_status(env.nas1.state, "UNCONFIGURED", "Application(s) are not configured")
    try:
        env.stack({**env.apps, "early": {"host": "nas1", "compose": "compose/plain.yml"}})
        mark = env.mark(env.nas1)
        run = env.pulumi("up", "--yes", ok=False)
    finally:
        store.set_docker_status(env.nas1.state, "RUNNING", "Application(s) are currently running")
    text = run.stdout + run.stderr
    assert not run.ok
    assert "host nas1: Apps are not configured (no pool is chosen for Docker) — in the TrueNAS UI, " \
           "Apps > Configuration > Choose Pool" in text
    assert "app.create" not in env.methods(env.nas1, mark)
    env.stack({k: v for k, v in env.apps.items() if k != "early"})


def test_a_missing_pool_fails_before_anything_changes(env):
    hosts = json.loads(json.dumps(env.hosts))
    hosts["nas1"]["pool"] = "tank2"
    env.stack({**env.apps, "early": {"host": "nas1", "compose": "compose/plain.yml"}}, hosts)
    mark = env.mark(env.nas1)
    run = env.pulumi("up", "--yes", ok=False)
    text = run.stdout + run.stderr
    assert not run.ok
    assert "host nas1: there is no pool 'tank2' (pools: tank)" in text
    assert "set homefleet:hosts.nas1.pool to an existing pool" in text
    assert "app.create" not in env.methods(env.nas1, mark)
    env.stack({k: v for k, v in env.apps.items() if k != "early"})


# ---------------------------------------------------------------- issue 19 item 11: drift named

def test_drift_is_named_on_refresh_and_in_the_preview(env):
    env.stack({**env.apps, "drifty": {"host": "nas2", "compose": "compose/quiet.yml"}})
    env.pulumi("up", "--yes")
    edited = env.midclt(env.nas2, "app.config", "drifty")
    edited["services"]["web"]["environment"]["GREETING"] = "edited in the UI"
    env.wait_job(env.nas2, env.midclt(env.nas2, "app.update", "drifty", {"custom_compose_config": edited}))
    env.wait_job(env.nas2, env.midclt(env.nas2, "app.stop", "drifty"))
    run = env.pulumi("refresh", "--yes")
    words = ("compose changed: services.web.environment.GREETING",
             "running: the app is STOPPED on the NAS, the stack wants it running")
    assert all(w in run.stdout for w in words), run.stdout
    preview = env.pulumi("preview", ok=False)
    assert "update to undo drift: " in preview.stdout and all(w in preview.stdout for w in words)
    env.pulumi("up", "--yes")
    env.pulumi("preview", "--expect-no-changes")


# ---------------------------------------------------------------- issue 19 item 4: named volumes

def test_removing_an_app_with_named_volumes_is_refused_in_the_preview(env):
    env.stack({**env.apps, "vols": {"host": "nas2", "compose": "compose/volumes.yml"}})
    env.pulumi("up", "--yes")
    env.stack({k: v for k, v in env.apps.items() if k != "vols"})
    mark = env.mark(env.nas2)
    preview = env.pulumi("preview", ok=False)
    assert not preview.ok and "because it is protected" in preview.stdout, str(preview)
    up = env.pulumi("up", "--yes", ok=False)
    assert not up.ok and env.app(env.nas2, "vols")["state"] == "RUNNING"
    assert "app.delete" not in env.methods(env.nas2, mark)
    # the documented way: deleteData first, then remove it
    env.stack({**env.apps, "vols": {"host": "nas2", "compose": "compose/volumes.yml", "deleteData": True}})
    env.pulumi("up", "--yes")
    env.stack({k: v for k, v in env.apps.items() if k != "vols"})
    env.pulumi("up", "--yes")
    assert env.app(env.nas2, "vols") is None


# ---------------------------------------------------------------- item 7: a moved tag is an update

MOVING = "docker.io/homefleet/pinme:1.0"


def _running_digest(env, host, app: str) -> str:
    running = json.loads((host.state / f"sim/truenas/rendered/{app}.images.json").read_text())
    return running["web"]["repo_digests"][0].split("@", 1)[1]


def test_a_tag_moved_in_the_registry_is_pinned_and_shows_as_an_update(env):
    from sim import registry
    first = registry.push_image(env.fleet.dir, MOVING)
    env.write("moving.yml", f"services:\n  web:\n    image: {MOVING}\n    restart: unless-stopped\n")
    env.stack({**env.apps, "moving": {"host": "nas2", "compose": "compose/moving.yml"}})
    env.pulumi("up", "--yes")
    stored = env.midclt(env.nas2, "app.config", "moving")["services"]["web"]["image"]
    assert stored == f"{MOVING}@{first}"                       # the tag stays beside its digest
    assert env.recorded("moving")["images"] == {"web": f"{MOVING}@{first}"}
    assert _running_digest(env, env.nas2, "moving") == first
    moved = registry.retag(env.fleet.dir, MOVING)
    assert moved != first
    mark = env.mark(env.nas2)
    env.pulumi("preview", "--expect-no-changes")               # no refresh: nothing is asked of the NAS
    assert env.methods(env.nas2, mark) == []
    preview = env.pulumi("preview", "--refresh", ok=False)
    assert f"services.web.image: {MOVING} now names {moved}" in preview.stdout, preview.stdout
    env.pulumi("up", "--refresh", "--yes")
    assert _running_digest(env, env.nas2, "moving") == moved   # TrueNAS alone would keep `first`
    assert env.recorded("moving")["images"] == {"web": f"{MOVING}@{moved}"}
    env.pulumi("preview", "--refresh", "--expect-no-changes")
    env.stack({k: v for k, v in env.apps.items() if k != "moving"})
    env.pulumi("up", "--yes")
