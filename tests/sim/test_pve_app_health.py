"""The simulated app on the network and inside its CT: the host's `curl` to a CT address, an
entrypoint that exits N seconds after the start, and commands a compose healthcheck runs with
`pct exec` (docs/dev/simulator.md, "Health")."""

from __future__ import annotations

import time

import pytest

from sim import images
from sim.pve.testkit import MT_LAYER_TAR, ToolHost, build_oci_archive

FIXED = {s.ref: s for s in images.fixed_test_images()}


@pytest.fixture
def host(tmp_path) -> ToolHost:
    h = ToolHost(tmp_path)
    h.template_cache.mkdir(parents=True)
    return h


def start_app(host: ToolHost, vmid: int, spec: images.ImageSpec, ip: str) -> None:
    config = images.image_config(spec, "sha256:" + "0" * 64)["config"]
    name = images.split_ref(spec.ref)[1].replace("/", "_") + f"_{vmid}.tar"
    build_oci_archive(host.template_cache / name, [images.build_layer(spec)], config,
                      layer_media_type=MT_LAYER_TAR)
    res = host.run("pct", "create", str(vmid), f"local:vztmpl/{name}", "--rootfs", "local:1",
                   "--mp0", "local:1,mp=/data", "--ostype", "unmanaged",
                   "--net0", f"name=eth0,bridge=vmbr0,ip={ip}/24")
    assert res.rc == 0, res.stderr
    assert host.run("pct", "start", str(vmid)).rc == 0


def test_host_curl_reaches_the_app_by_its_address(host):
    start_app(host, 101, FIXED["ghcr.io/homefleet/test-app:1.0"], "198.18.7.10")
    res = host.run("curl", "-fsS", "http://198.18.7.10:8080/")
    assert (res.rc, res.stdout) == (0, "test-app 1.0\n")
    res = host.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://198.18.7.10:8080/health")
    assert (res.rc, res.stdout) == (0, "200")
    res = host.run("curl", "-sS", "http://198.18.7.10:9999/")
    assert res.rc == 7 and "Failed to connect to 198.18.7.10 port 9999" in res.stderr
    res = host.run("curl", "-s", "-w", "%{http_code}", "http://198.18.7.11:8080/")
    assert (res.rc, res.stdout, res.stderr) == (7, "000", "")


def test_unhealthy_image_serves_but_fails_its_health_path(host):
    start_app(host, 102, FIXED["ghcr.io/homefleet/test-app:2.1-unhealthy"], "198.18.7.12")
    assert host.run("curl", "-s", "http://198.18.7.12:8080/").stdout == "test-app 2.1-unhealthy\n"
    res = host.run("curl", "-fsS", "http://198.18.7.12:8080/health")
    assert res.rc == 22 and "The requested URL returned error: 500" in res.stderr
    assert host.run("curl", "-s", "http://198.18.7.12:8080/health").rc == 0    # no -f: curl is happy
    data = host.path("/var/lib/vz/images/102/vm-102-disk-1.raw")
    assert (data / "migrated-by-2.1").is_file()


def test_crashing_entrypoint_stops_the_ct_after_its_seconds(host):
    start_app(host, 103, FIXED["ghcr.io/homefleet/test-app:2.2-crash"], "198.18.7.13")
    assert host.run("pct", "status", "103").stdout == "status: running\n"
    assert host.run("curl", "-fsS", "http://198.18.7.13:8080/health").rc == 0
    time.sleep(3.1)
    assert host.run("lxc-info", "-n", "103", "-s").stdout.split() == ["State:", "STOPPED"]
    assert host.run("pct", "status", "103").stdout == "status: stopped\n"
    assert host.run("curl", "-s", "http://198.18.7.13:8080/health").rc == 7
    log = host.path("/run/pve/ct-103.stderr").read_text()
    assert "panic: migration 2.2 failed" in log and log.count("\n") == 1
    assert host.run("pct", "start", "103").rc == 0       # vm_start unlinks the old stderr file
    assert not host.path("/run/pve/ct-103.stderr").exists()


def test_compose_healthcheck_commands_under_pct_exec(host):
    spec = FIXED["ghcr.io/homefleet/test-app:2.1-unhealthy"].with_overrides(behaviour={
        **FIXED["ghcr.io/homefleet/test-app:2.1-unhealthy"].behaviour,
        "commands": {"pg_isready": {"exit": 2, "stdout": "/run/postgresql:5432 - no response"},
                     "redis-cli": {"exit": 0, "stdout": "PONG"}}})
    start_app(host, 104, spec, "198.18.7.14")
    res = host.run("pct", "exec", "104", "--", "/bin/sh", "-c", "pg_isready -U app || exit 1")
    assert (res.rc, res.stdout) == (1, "/run/postgresql:5432 - no response\n")
    res = host.run("pct", "exec", "104", "--", "sh", "-c", "redis-cli ping | grep -q PONG || exit 1")
    assert (res.rc, res.stdout) == (0, "")
    res = host.run("pct", "exec", "104", "--", "sh", "-c", "redis-cli ping | grep -v PONG")
    assert res.rc == 1
    res = host.run("pct", "exec", "104", "--", "curl", "-fsS", "http://localhost:8080/health")
    assert res.rc == 22 and "returned error: 500" in res.stderr
    res = host.run("pct", "exec", "104", "--", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/")
    assert (res.rc, res.stdout) == (0, "test-app 2.1-unhealthy\n")
    res = host.run("pct", "exec", "104", "--", "sh", "-c", "wget -q --spider http://localhost:8080/health")
    assert res.rc == 1 and "500 Internal Server Error" in res.stderr


def test_a_static_address_outside_the_simulated_range_is_answered_by_its_ct(host):
    start_app(host, 105, FIXED["ghcr.io/homefleet/test-app:1.0"], "192.0.2.62")
    res = host.run("curl", "-fsS", "http://192.0.2.62:8080/")
    assert (res.rc, res.stdout) == (0, "test-app 1.0\n")
