"""TrueNASAppProvider called directly (no engine) against the simulated TrueNAS hosts:
the paths the engine tests do not take — named volumes on delete, an app deleted in the UI,
sudo without a NOPASSWD rule, the stdin payload of TrueNAS 26, Docker stopped on delete."""

from __future__ import annotations

import json

import pytest

from providers.errors import HostCommandError
from providers.truenas_app import TrueNASAppProvider
from sim.testing import ssh_run, tool_calls
from sim.truenas import paths, store

IMAGE = "docker.io/library/nginx:1.27.3"


def props(host, app: str, compose: str, **extra) -> dict:
    target = {"name": host.name, "address": host.address, "port": host.port, "user": host.user,
              "host_key": host.host_key, "key_file": host.client_key}
    return {"host": target, "stack": "unit", "app": app, "compose": compose, "running": True,
            "delete_data": False, "sudo": False, **extra}


def midclt(host, method: str, *args):
    rc, out, err = ssh_run(host, ["midclt", "call", method, *[json.dumps(a) for a in args]])
    assert rc == 0, err
    return json.loads(out)


def query(host, app: str):
    found = midclt(host, "app.query", [["name", "=", app]])
    return found[0] if found else None


@pytest.fixture
def provider():
    return TrueNASAppProvider()


def test_named_volumes_are_only_deleted_with_delete_data(nas_fleet, provider):
    nas = nas_fleet["nas2"]
    compose = f"services:\n  db:\n    image: {IMAGE}\n    volumes: ['data:/data']\nvolumes:\n  data: {{}}\n"
    p = props(nas, "pgdata", compose)
    created = provider.create(p)
    assert created.outs["state"] == "RUNNING"
    with pytest.raises(HostCommandError, match=r"named volumes \(data\).*deleteData: true"):
        provider.delete(created.id, created.outs)
    assert query(nas, "pgdata")["state"] == "RUNNING"
    provider.delete(created.id, {**created.outs, "delete_data": True})
    assert query(nas, "pgdata") is None


def test_an_app_deleted_in_the_ui_reads_as_gone_and_delete_is_a_no_op(nas_fleet, provider):
    nas = nas_fleet["nas1"]
    created = provider.create(props(nas, "gone", f"services:\n  web:\n    image: {IMAGE}\n"))
    midclt(nas, "app.delete", "gone")
    assert query(nas, "gone") is None
    assert provider.read(created.id, created.outs).id == ""
    provider.delete(created.id, created.outs)            # already absent: success


def test_sudo_without_nopasswd_is_explained(nas_fleet, provider):
    nas = nas_fleet["nas2"]
    (nas.state / "sudo_denied").touch()
    try:
        with pytest.raises(HostCommandError, match="NOPASSWD rule for midclt"):
            provider.create(props(nas, "sudoer", f"services:\n  web:\n    image: {IMAGE}\n", sudo=True))
    finally:
        (nas.state / "sudo_denied").unlink()
    assert query(nas, "sudoer") is None


def test_truenas_26_gets_the_compose_on_stdin_not_on_the_command_line(nas_fleet, provider):
    nas = nas_fleet["nas1"]
    old = paths.version_file(nas.state).read_text()
    paths.set_version(nas.state, "26.0.0")
    secret = "s3cret-value-on-stdin"
    compose = f"services:\n  web:\n    image: {IMAGE}\n    environment: {{TOKEN: {secret}}}\n"
    before = len(tool_calls(nas))
    try:
        created = provider.create(props(nas, "stdin", compose, generation="26.0"))
        provider.delete(created.id, created.outs)
    finally:
        paths.version_file(nas.state).write_text(old)
    calls = [c["argv"] for c in tool_calls(nas)[before:]]
    assert ["call", "app.create", "-"] in calls
    assert not any(secret in arg for argv in calls for arg in argv)


def test_before_26_the_compose_is_an_argument_which_is_the_documented_residual_risk(nas_fleet, provider):
    nas = nas_fleet["nas2"]
    compose = f"services:\n  web:\n    image: {IMAGE}\n    environment: {{TOKEN: visible}}\n"
    before = len(tool_calls(nas))
    created = provider.create(props(nas, "argv", compose))
    provider.delete(created.id, created.outs)
    creates = [c["argv"] for c in tool_calls(nas)[before:] if c["argv"][:2] == ["call", "app.create"]]
    assert len(creates) == 1 and "visible" in creates[0][2]


def test_delete_while_docker_is_stopped_fails_instead_of_pretending(nas_fleet, provider):
    nas = nas_fleet["nas1"]
    created = provider.create(props(nas, "dockerless", f"services:\n  web:\n    image: {IMAGE}\n"))
    store.set_docker_status(nas.state, "STOPPED")
    try:
        with pytest.raises(HostCommandError, match="Docker is not running on the NAS"):
            provider.delete(created.id, created.outs)
    finally:
        store.set_docker_status(nas.state, "RUNNING")
    provider.delete(created.id, created.outs)
    assert query(nas, "dockerless") is None


def test_check_refuses_what_truenas_cannot_run_without_a_host(provider):
    result = provider.check({}, {"app": "Bad_Name", "compose": "services:\n  web:\n    build: .\n"})
    reasons = [f.reason for f in result.failures]
    assert any("not a TrueNAS app name" in r for r in reasons)
    assert any("services.web.build" in r for r in reasons)
    assert any("services.web.image is required" in r for r in reasons)
    marker = provider.check({}, {"app": "ok", "compose": f"services:\n  w:\n    image: {IMAGE}\nx-homefleet: {{}}\n"})
    assert [f.reason for f in marker.failures] == [
        "`x-homefleet` is homefleet's ownership marker; remove it from the compose"]
