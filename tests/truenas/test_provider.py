"""TrueNASAppProvider called directly (no engine) against the simulated TrueNAS hosts:
the paths the engine tests do not take — named volumes on delete, an app deleted in the UI,
sudo without a NOPASSWD rule, the stdin payload of TrueNAS 26, Docker stopped on delete."""

from __future__ import annotations

import json

import pytest

from providers.errors import HostCommandError
from providers.hosts import midclt as builders
from providers.truenas_app import TrueNASAppProvider, _Host
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


@pytest.mark.parametrize("host", ["nas1", "nas2"])
def test_before_26_the_compose_is_never_in_a_command_line(nas_fleet, provider, host):
    nas = nas_fleet[host]
    compose = f"services:\n  web:\n    image: {IMAGE}\n    environment: {{TOKEN: not-in-argv}}\n"
    before = len(tool_calls(nas))
    created = provider.create(props(nas, "argv", compose))
    provider.delete(created.id, created.outs)
    calls = tool_calls(nas)[before:]
    helper = [c["argv"] for c in calls if c["tool"] == "python3"]
    # the image pull (resolving the tag to a digest) goes the same way: image names are compose text
    assert helper == [["-c", builders.HELPER, "app.image.pull"], ["-c", builders.HELPER, "app.create"]]
    execs = [c for c in calls if c["tool"] != "truenas_api_client"]       # the in-process midclt is no exec
    assert not any("not-in-argv" in json.dumps(c["argv"]) for c in execs)


def test_a_job_on_an_app_that_vanished_is_enoent_and_delete_copes(nas_fleet):
    nas = nas_fleet["nas1"]
    host = _Host(props(nas, "ghost", f"services:\n  web:\n    image: {IMAGE}\n"))
    with pytest.raises(HostCommandError, match=r"\[ENOENT\] None: App ghost does not exist"):
        host.job("app.stop", "ghost", step="app.stop")
    assert host.job("app.delete", "ghost", builders.delete_options(False), step="app.delete", missing_ok=True) is None


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
