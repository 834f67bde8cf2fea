"""TrueNASApp through the real Pulumi engine, on two simulated TrueNAS hosts: nas1 runs the
24.10 midclt (where `-j` takes a value) as root, nas2 the 25.04 one behind `sudo -n`.

The steps run in order and share one stack, one app per host, so every step exercises
both generations in one `pulumi` run: a bad compose refused before any host call, create,
a no-change preview, a compose edit applied in place, stop/start, drift + refresh, Docker
stopped during refresh, refusal to take over an app we do not own, a CRASHED app, and
deletion that keeps ix-volumes (and removes them with deleteData).
"""

from __future__ import annotations

import json

import pytest

from sim.engine import LocalProject, host_entries
from sim.testing import commands, tool_calls
from sim.truenas import store

from .nas_calls import NasCalls
from ..engine.helpers import QUICK_SETTLE

pytestmark = pytest.mark.engine

STACK = "fleet"
WEB = """\
services:
  web:
    image: docker.io/library/nginx:1.27.3
    ports: ["8080:80"]
    env_file: app.env
    environment:
      GREETING: ${GREETING:-hello}
    volumes:
      - /mnt/tank/apps/web:/usr/share/nginx/html:ro
"""
BAD = "services:\n  web:\n    build: .\n"
SYSTEM_PATH = "services:\n  web:\n    image: docker.io/library/nginx:1.27.3\n    volumes: ['/etc:/host-etc']\n"
CRASHY = "services:\n  job:\n    image: docker.io/library/crash-test:1.0\n"


class Env(NasCalls):
    def __init__(self, fleet, project: LocalProject):
        self.fleet = fleet
        self.project = project
        self.nas1, self.nas2 = fleet["nas1"], fleet["nas2"]
        hosts = json.loads(fleet.hosts_json.read_text())["hosts"]
        self.hosts = host_entries(hosts, health_settle=QUICK_SETTLE)
        for entry in self.hosts.values():
            entry["pool"] = "tank"
        self.hosts["nas2"]["sudo"] = True
        self.apps: dict = {}

    def write(self, name: str, text: str) -> None:
        path = self.project.workdir / "compose" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)

    def stack(self, apps: dict) -> None:
        self.apps = apps
        self.project.write_stack(STACK, {"homefleet:hosts": self.hosts, "homefleet:apps": apps})

    def pulumi(self, *args, ok: bool = True):
        run = self.project.pulumi(*args, stack=STACK)
        if ok:
            assert run.ok, str(run)
        return run

    def _resources(self) -> list:
        """The stack's resources from the file backend's state (a CLI call costs seconds)."""
        state = json.loads(self.project.state_file(STACK).read_text())
        return state["checkpoint"]["latest"].get("resources") or []

    def outputs(self) -> dict:
        stack = next(r for r in self._resources() if r["type"] == "pulumi:pulumi:Stack")
        return stack["outputs"]["apps"]

    def recorded(self, name: str) -> dict:
        """The outputs the state holds for app `name` (refresh updates these, not stack outputs)."""
        for res in self._resources():
            if res["type"].endswith(":TrueNASApp") and res["urn"].endswith(f"::{name}"):
                return res["outputs"]
        raise KeyError(name)

    def calls(self, host, since: int = 0) -> list:
        """midclt argv lists (without sudo) since the `since`-th tool call."""
        out = []
        for call in tool_calls(host)[since:]:
            argv = call["argv"]
            if call["tool"] in ("sudo", "python3"):    # python3 runs midclt's main in-process: logged as
                continue                                # truenas_api_client with midclt's argv
            out.append(argv)
        return out

    def methods(self, host, since: int = 0) -> list:
        return [argv[1] if argv[0] == "call" else argv for argv in self.calls(host, since)]

    def mark(self) -> dict:
        return {h.name: len(tool_calls(h)) for h in (self.nas1, self.nas2)}


@pytest.fixture(scope="module")
def env(nas_fleet, tmp_path_factory):
    e = Env(nas_fleet, LocalProject.create(tmp_path_factory.mktemp("truenas-engine")))
    e.write("web.yml", WEB)
    e.write("app.env", "FROM_ENV_FILE=yes\n")
    e.write("bad.yml", BAD)
    e.write("system.yml", SYSTEM_PATH)
    e.write("crashy.yml", CRASHY)
    return e


def test_a_bad_compose_is_refused_before_any_host_call(env):
    env.stack({"web24": {"host": "nas1", "compose": "compose/bad.yml"},
               "sys": {"host": "nas1", "compose": "compose/system.yml"},
               "web-": {"host": "nas2", "compose": "compose/web.yml"}})
    before = {h.name: len(commands(h)) for h in (env.nas1, env.nas2)}
    run = env.pulumi("up", "--yes", ok=False)
    text = run.stdout + run.stderr
    assert not run.ok
    assert "compose/bad.yml: services.web.build: is not supported" in text
    assert "compose/system.yml: services.web.volumes[0]: the bind mount source '/etc' is a system path" in text
    assert "set allowSystemPaths: true on homefleet:apps.sys" in text
    assert "stacks/Pulumi.fleet.yaml: homefleet:apps.web-: 'web-' is not a TrueNAS app name" in text
    assert {h.name: len(commands(h)) for h in (env.nas1, env.nas2)} == before


def test_create_on_both_generations(env):
    env.stack({"web24": {"host": "nas1", "compose": "compose/web.yml", "env": {"GREETING": "hi"}},
               "web25": {"host": "nas2", "compose": "compose/web.yml"}})
    mark = env.mark()                     # the fleet is shared with the other modules of this folder
    run = env.pulumi("up", "--yes")
    assert "services.web.env_file: 'app.env' is on this machine, so its values are inlined" in run.stdout
    apps = env.outputs()
    for name in ("web24", "web25"):
        assert apps[name]["state"] == "RUNNING"
        assert apps[name]["urls"] == ["http://127.0.0.1:8080"]
    for host, name, greeting in ((env.nas1, "web24", "hi"), (env.nas2, "web25", "hello")):
        creates = [a for a in env.calls(host, mark[host.name]) if a[:2] == ["call", "app.create"]]
        assert len(creates) == 1 and not any("-j" in a or "-job" in a for a in env.calls(host, mark[host.name]))
        payload = json.loads(creates[0][2])
        assert set(payload) == {"app_name", "custom_app", "custom_compose_config_string"}
        assert payload["app_name"] == name and payload["custom_app"] is True
        config = env.midclt(host, "app.config", name)
        assert config["x-homefleet"] == {"stack": STACK, "app": name}
        assert config["services"]["web"]["environment"] == {"FROM_ENV_FILE": "yes", "GREETING": greeting}
        assert "core.get_jobs" in env.methods(host, mark[host.name])
    assert [c["tool"] for c in tool_calls(env.nas2)[mark["nas2"]:]][:1] == ["sudo"]
    assert {c["tool"] for c in tool_calls(env.nas1)[mark["nas1"]:]} == {"midclt", "python3", "truenas_api_client"}


def test_no_change_preview_makes_no_host_call(env):
    before = {h.name: len(commands(h)) for h in (env.nas1, env.nas2)}
    env.pulumi("preview", "--expect-no-changes")
    assert {h.name: len(commands(h)) for h in (env.nas1, env.nas2)} == before


def test_a_compose_edit_is_an_update_in_place(env):
    env.write("web.yml", WEB.replace("${GREETING:-hello}", "${GREETING:-bonjour}"))
    mark = env.mark()
    run = env.pulumi("up", "--yes")
    assert "replace" not in run.stdout and "1 updated" in run.stdout
    assert "app.update" in env.methods(env.nas2, mark["nas2"])
    assert not {"app.create", "app.delete"} & set(env.methods(env.nas2, mark["nas2"]))
    assert "app.update" not in env.methods(env.nas1, mark["nas1"])       # web24 sets GREETING itself
    assert env.midclt(env.nas2, "app.config", "web25")["services"]["web"]["environment"]["GREETING"] == "bonjour"
    assert env.app(env.nas2, "web25")["state"] == "RUNNING"


def test_stop_and_start(env):
    apps = dict(env.apps)
    apps["web24"] = {**apps["web24"], "running": False}
    env.stack(apps)
    mark = env.mark()
    env.pulumi("up", "--yes")
    assert env.outputs()["web24"]["state"] == "STOPPED"
    assert env.app(env.nas1, "web24")["state"] == "STOPPED"
    assert "app.stop" in env.methods(env.nas1, mark["nas1"])
    apps["web24"] = {**apps["web24"], "running": True}
    env.stack(apps)
    mark = env.mark()
    env.pulumi("up", "--yes")
    assert env.outputs()["web24"]["state"] == "RUNNING"
    assert "app.start" in env.methods(env.nas1, mark["nas1"])


def test_drift_shows_on_refresh_and_up_puts_it_back(env):
    env.wait_job(env.nas2, env.midclt(env.nas2, "app.stop", "web25"))           # stopped in the UI
    edited = env.midclt(env.nas1, "app.config", "web24")
    edited["services"]["web"]["environment"]["GREETING"] = "edited in the UI"
    env.wait_job(env.nas1, env.midclt(env.nas1, "app.update", "web24", {"custom_compose_config": edited}))
    run = env.pulumi("refresh", "--yes")
    assert "drift on the NAS (edited in the TrueNAS UI?): compose changed: services.web.environment.GREETING" \
        in run.stdout
    assert env.recorded("web25")["state"] == "STOPPED"
    preview = env.pulumi("preview", "--expect-no-changes", ok=False)
    assert not preview.ok and "2 to update" in preview.stdout
    env.pulumi("up", "--yes")
    assert env.app(env.nas2, "web25")["state"] == "RUNNING"
    assert env.midclt(env.nas1, "app.config", "web24")["services"]["web"]["environment"]["GREETING"] == "hi"
    env.pulumi("preview", "--expect-no-changes")


def test_refresh_while_docker_is_stopped_fails_instead_of_forgetting_the_app(env):
    store.set_docker_status(env.nas1.state, "STOPPED", "Docker service is not running")
    try:
        run = env.pulumi("refresh", "--yes", ok=False)
    finally:
        store.set_docker_status(env.nas1.state, "RUNNING")
    assert not run.ok and "Docker is not running on the NAS" in run.stdout + run.stderr
    assert env.recorded("web24")["state"] == "RUNNING"


def test_refuses_an_app_it_does_not_own(env):
    theirs = {"services": {"app": {"image": "docker.io/library/nginx:1.27.3"}}}
    env.wait_job(env.nas2, env.midclt(env.nas2, "app.create", {"app_name": "manual", "custom_app": True,
                                                               "custom_compose_config": theirs}))
    mark = env.mark()
    env.stack({**env.apps, "manual": {"host": "nas2", "compose": "compose/web.yml"}})
    run = env.pulumi("up", "--yes", ok=False)
    text = run.stdout + run.stderr
    assert not run.ok
    assert "host nas2: refusing to take over app manual: its compose has no `x-homefleet` marker" in text
    assert env.midclt(env.nas2, "app.config", "manual") == theirs
    assert not {"app.update", "app.delete", "app.stop"} & set(env.methods(env.nas2, mark["nas2"]))
    env.stack({k: v for k, v in env.apps.items() if k != "manual"})


def test_a_crashed_app_gives_a_readable_error_and_is_removed(env):
    env.stack({**env.apps, "crashy": {"host": "nas1", "compose": "compose/crashy.yml"}})
    run = env.pulumi("up", "--yes", ok=False)
    text = run.stdout + run.stderr
    assert not run.ok
    assert "host nas1: app.create (app crashy) failed" in text
    assert "the app is CRASHED: a container exited with an error (job: crashed)" in text
    assert "/var/log/app_lifecycle.log has no line about crashy" in text
    assert env.app(env.nas1, "crashy") is None
    env.stack({k: v for k, v in env.apps.items() if k != "crashy"})


def test_delete_keeps_ix_volumes_unless_delete_data(env):
    mounts = "sim/truenas/app_mounts"
    env.stack({"web25": {**env.apps["web25"], "deleteData": True}})
    mark = env.mark()
    env.pulumi("up", "--yes")
    deletes = [a for a in env.calls(env.nas1, mark["nas1"]) if a[:2] == ["call", "app.delete"]]
    assert [json.loads(a[3]) for a in deletes] == [{"remove_images": True, "remove_ix_volumes": False}]
    assert env.app(env.nas1, "web24") is None
    assert (env.nas1.state / mounts / "web24").is_dir()
    env.pulumi("destroy", "--yes")
    assert env.app(env.nas2, "web25") is None
    assert not (env.nas2.state / mounts / "web25").exists()
