"""Safe upgrades of TrueNAS apps through the real Pulumi engine (issue 15 on TrueNAS).

An image upgrade records what ran before (the compose digest and each service's image
digest), snapshots the app's host-path datasets when `snapshotDatasets: true`, and waits
for the app's health from `active_workloads`; an app that does not get healthy within
`healthTimeout` is put back (the previous compose with its pinned digests, the datasets
rolled back to the snapshot) and the `up` fails with the evidence. The state keeps the old
inputs, so the next preview still shows the upgrade pending. `rollback: false` leaves the
broken version in place.

The simulated test-app images write `/data/migrated-by-<version>` into the host path
mounted at `/data` when they start (sim/truenas/datasets.py); `2.1-unhealthy` never passes
its healthcheck, `2.2-crash` exits (a crash loop under `restart: unless-stopped`).
nas1 runs 24.10 as root, nas2 25.04 behind `sudo -n`.
"""

from __future__ import annotations

import json

import pytest

from sim.engine import LocalProject
from sim.truenas import datasets

from .nas_calls import NasCalls
from ..engine.helpers import hosts_config

pytestmark = pytest.mark.engine

STACK = "upgrade"
DATA = "/mnt/tank/apps/svc"
COMPOSE = """\
services:
  svc:
    image: ghcr.io/homefleet/test-app:{tag}
    restart: unless-stopped
    ports: ["8093:8080"]
    environment:
      APP_MODE: v{tag}
    volumes:
      - {data}:/data
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 1s
      retries: 2
"""


class Env(NasCalls):
    def __init__(self, fleet, project: LocalProject):
        self.project = project
        self.nas1, self.nas2 = fleet["nas1"], fleet["nas2"]
        self.hosts = hosts_config(fleet)
        for entry in self.hosts.values():
            entry["pool"] = "tank"
        self.hosts["nas2"]["sudo"] = True

    def deploy(self, apps: dict, ok: bool = True):
        for name, app in apps.items():
            path = self.project.workdir / "compose" / f"{name}.yml"
            path.parent.mkdir(exist_ok=True)
            path.write_text(COMPOSE.format(tag=app.pop("tag"), data=f"/mnt/tank/apps/{name}"))
            app["compose"] = f"compose/{name}.yml"
        self.project.write_stack(STACK, {"homefleet:hosts": self.hosts, "homefleet:apps": apps})
        run = self.project.pulumi("up", "--yes", stack=STACK)
        if ok:
            assert run.ok, str(run)
        return run

    def state_text(self) -> str:
        return self.project.state_file(STACK).read_text()

    def recorded(self, name: str) -> dict:
        state = json.loads(self.state_text())
        for res in state["checkpoint"]["latest"].get("resources") or []:
            if res["type"].endswith(":TrueNASApp") and res["urn"].endswith(f"::{name}"):
                return res["outputs"]
        raise KeyError(name)

    def image(self, host, name: str) -> str:
        return self.midclt(host, "app.config", name)["services"]["svc"]["image"]


@pytest.fixture(scope="module")
def env(nas_fleet, tmp_path_factory):
    e = Env(nas_fleet, LocalProject.create(tmp_path_factory.mktemp("truenas-upgrade")))
    # One dataset per app, holding a file the user wrote before homefleet ever ran.
    for host, name in ((e.nas1, "svc"), (e.nas2, "svc2")):
        datasets.add(host.state, f"tank/apps/{name}")
        folder = datasets.folder(host.state, f"/mnt/tank/apps/{name}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "users-notes.txt").write_text("mine\n")
    return e


def apps(svc: str, svc2: str) -> dict:
    return {"svc": {"host": "nas1", "tag": svc, "healthTimeout": 8, "snapshotDatasets": True, "keepBackups": 1},
            "svc2": {"host": "nas2", "tag": svc2, "healthTimeout": 8, "rollback": False}}


def test_create_waits_for_health_and_reports_it(env):
    env.deploy(apps("2.0", "2.0"))
    for name in ("svc", "svc2"):
        outs = env.recorded(name)
        assert outs["healthy"] is True
        assert outs["health_timeout"] == 8
    assert env.app(env.nas1, "svc")["state"] == "RUNNING"
    assert (datasets.folder(env.nas1.state, DATA) / "migrated-by-2.0").is_file()


def test_an_unhealthy_upgrade_is_reverted_and_the_up_fails_with_evidence(env):
    before = env.recorded("svc")
    pinned_before = env.image(env.nas1, "svc")
    assert "@sha256:" in pinned_before and ":2.0@" in pinned_before
    run = env.deploy(apps("2.1-unhealthy", "2.0"), ok=False)
    text = run.stdout + run.stderr
    assert not run.ok
    assert "svc did not become healthy within 8s" in text
    assert "svc: starting" in text                       # the container states, as app.query gave them
    assert "reverted to the previous version" in text
    assert f"ghcr.io/homefleet/test-app:2.0@{pinned_before.split('@', 1)[1]}" in text
    assert "rolled back the snapshot tank/apps/svc@homefleet-svc-" in text
    # The NAS runs the previous compose, pinned as before, and is healthy again.
    assert env.image(env.nas1, "svc") == pinned_before
    assert env.app(env.nas1, "svc")["state"] == "RUNNING"
    # The data is as it was before the upgrade: what 2.1 wrote is gone, the user's file is there.
    folder = datasets.folder(env.nas1.state, DATA)
    assert not (folder / "migrated-by-2.1").exists()
    assert (folder / "users-notes.txt").read_text() == "mine\n"
    snaps = env.midclt(env.nas1, "zfs.snapshot.query", [["dataset", "=", "tank/apps/svc"]])
    assert [s["snapshot_name"].startswith("homefleet-svc-") for s in snaps] == [True]
    # The state tells the truth: still the old version.
    assert env.recorded("svc")["compose_digest"] == before["compose_digest"]
    preview = env.project.pulumi("preview", "--expect-no-changes", stack=STACK)
    assert not preview.ok and "1 to update" in preview.stdout


def test_the_next_up_with_a_fixed_image_succeeds(env):
    pinned_before = env.image(env.nas1, "svc")
    env.deploy(apps("2.3", "2.0"))
    outs = env.recorded("svc")
    assert outs["healthy"] is True
    assert ":2.3@sha256:" in env.image(env.nas1, "svc")
    assert outs["previous"]["images"] == {"svc": pinned_before}
    assert set(outs["previous"]) == {"compose_digest", "images", "snapshots"}    # digests, never the compose
    assert outs["previous"]["snapshots"][0].startswith("tank/apps/svc@homefleet-svc-")
    # keepBackups: 1 — the snapshot before this upgrade stays, the one before 2.1's is pruned
    snaps = env.midclt(env.nas1, "zfs.snapshot.query", [["dataset", "=", "tank/apps/svc"]])
    assert [s["name"] for s in snaps] == outs["previous"]["snapshots"], snaps
    assert (datasets.folder(env.nas1.state, DATA) / "migrated-by-2.3").is_file()
    env.project.pulumi("preview", "--expect-no-changes", stack=STACK, check=True)


def test_refresh_updates_healthy(env):
    env.wait_job(env.nas1, env.midclt(env.nas1, "app.stop", "svc"))         # stopped in the TrueNAS UI
    env.project.pulumi("refresh", "--yes", stack=STACK, check=True)
    assert env.recorded("svc")["healthy"] is False
    assert env.recorded("svc2")["healthy"] is True
    env.project.pulumi("up", "--yes", stack=STACK, check=True)             # starts it again
    assert env.recorded("svc")["healthy"] is True


def test_rollback_false_leaves_the_crashing_version_in_place(env):
    # TrueNAS reports no restart count: a crash loop shows only as `exited` between short runs.
    # Runs much shorter than the stable window (healthSettle: 1 s here, 5 s by default) and a quick restart
    # make every poll likely to see one, as a real NAS's 5 s window does for a 3 s crash.
    timing = env.nas2.state / "truenas_timing.json"
    saved = timing.read_text()
    timing.write_text(json.dumps({**json.loads(saved), "loop_seconds": 0.12}))
    try:
        run = env.deploy(apps("2.3", "2.2-crash"), ok=False)
    finally:
        timing.write_text(saved)
    text = run.stdout + run.stderr
    assert not run.ok
    assert "the app keeps restarting: svc" in text
    assert "rollback: false" in text and "reverted" not in text
    assert ":2.2-crash@sha256:" in env.image(env.nas2, "svc2")
    assert not env.midclt(env.nas2, "zfs.snapshot.query", [["dataset", "=", "tank/apps/svc2"]])
    preview = env.project.pulumi("preview", "--expect-no-changes", stack=STACK)
    assert not preview.ok and "1 to update" in preview.stdout
