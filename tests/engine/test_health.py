"""Issue 15 item 1 on Proxmox: the health gate after a create, the evidence when it fails, and
`pulumi refresh` keeping the `healthy` output true to the host. Real engine, simulated host."""

import json
import time

import pytest

from sim.engine import LocalProject, host_entries
from sim.testing import running_fleet, ssh_run

from .helpers import ct_by_name

pytestmark = pytest.mark.engine
STACK = "health"
APP = {"host": "pve1", "image": "ghcr.io/homefleet/test-app:1.0"}
COMPOSE = """\
name: probe
services:
  web:
    image: ghcr.io/homefleet/test-app:1.0
    healthcheck:
      test: ["CMD-SHELL", "curl -fsS http://localhost:8080/ready || exit 1"]
      timeout: 5s
      interval: 2s
      retries: 2
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=1) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = LocalProject.create(tmp_path_factory.mktemp("project"))
    (project.workdir / "compose").mkdir()
    (project.workdir / "compose" / "probe.yml").write_text(COMPOSE)
    return project


def deploy(project, fleet, apps, check=True):
    hosts = host_entries(json.loads(fleet.hosts_json.read_text())["hosts"])
    project.write_stack(STACK, {"homefleet:hosts": hosts, "homefleet:apps": apps})
    return project.pulumi("up", "--yes", "--parallel", "8", stack=STACK, check=check)


def outputs(project, name: str) -> dict:
    state = project.pulumi("stack", "export", stack=STACK, check=True).json()
    return next(r["outputs"] for r in state["deployment"]["resources"] if r["urn"].endswith(f"::{name}"))


def test_healthy_app_is_created_healthy_and_refresh_sees_it_stopped(fleet, project):
    deploy(project, fleet, {"web": {**APP, "vmid": 300}})
    assert outputs(project, "web")["healthy"] is True
    rc, _, err = ssh_run(fleet["pve1"], ["pct", "stop", "300"])
    assert rc == 0, err
    project.pulumi("refresh", "--yes", stack=STACK, check=True)
    web = outputs(project, "web")
    assert web["healthy"] is False and web["status"] == "stopped"
    deploy(project, fleet, {"web": {**APP, "vmid": 300}})          # up starts it and waits for it again
    assert outputs(project, "web")["healthy"] is True


def test_crashing_entrypoint_fails_the_create_with_the_ct_log(fleet, project):
    apps = {"web": {**APP, "vmid": 300},
            "crash": {"host": "pve1", "image": "ghcr.io/homefleet/test-app:2.2-crash", "vmid": 301,
                      "healthTimeout": 60}}
    started = time.monotonic()
    run = deploy(project, fleet, apps, check=False)
    took = time.monotonic() - started
    assert not run.ok
    out = run.stdout + run.stderr
    assert "waiting for crash (CT 301) to be healthy" in out, out
    assert "the CT stopped: its entrypoint exited" in out, out
    assert "panic: migration 2.2 failed: no such column" in out, out     # the lxc log line, in the error
    assert "/run/pve/ct-301.stderr" in out, out
    assert took < 60 + 45, took          # fails when the CT stops, not at the end of healthTimeout
    assert ct_by_name(fleet["pve1"], "crash")["status"] == "stopped"


def test_compose_healthcheck_failure_reports_the_checks_output(fleet, project):
    # healthTimeout is far off: the gate ends when Docker would say unhealthy (2 retries x 2 s)
    apps = {"web": {**APP, "vmid": 300},
            "probe": {"host": "pve1", "compose": "compose/probe.yml", "healthTimeout": 600, "deleteData": True}}
    run = deploy(project, fleet, apps, check=False)
    assert not run.ok
    out = run.stdout + run.stderr
    assert "healthcheck `/bin/sh -c curl -fsS http://localhost:8080/ready || exit 1`" in out, out
    assert "unhealthy by its own healthcheck: still failing 4 s after the start" in out, out
    assert "curl: (22) The requested URL returned error: 404" in out, out
