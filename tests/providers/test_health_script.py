"""The host-side health gate script (providers/hosts/health.py) run against simulated PVE tools:
it waits for the settle window, fails fast when the entrypoint exits, and names the check's output."""

from __future__ import annotations

import subprocess
import time

import pytest

from providers.hosts import health
from sim import images, launcher
from sim.pve.testkit import MT_LAYER_TAR, ToolHost, build_oci_archive

FIXED = {s.ref: s for s in images.fixed_test_images()}


@pytest.fixture
def host(tmp_path) -> ToolHost:
    h = ToolHost(tmp_path)
    h.template_cache.mkdir(parents=True)
    launcher.write_shims(tmp_path / "bin", with_truenas=False)
    h.bin = tmp_path / "bin"
    return h


def start_app(host: ToolHost, vmid: int, tag: str, ip: str) -> None:
    spec = FIXED[f"ghcr.io/homefleet/test-app:{tag}"]
    config = images.image_config(spec, "sha256:" + "0" * 64)["config"]
    name = f"test-app_{vmid}.tar"
    build_oci_archive(host.template_cache / name, [images.build_layer(spec)], config, layer_media_type=MT_LAYER_TAR)
    res = host.run("pct", "create", str(vmid), f"local:vztmpl/{name}", "--rootfs", "local:1",
                   "--mp0", "local:1,mp=/data", "--ostype", "unmanaged", "--net0", f"name=eth0,bridge=vmbr0,ip={ip}/24")
    assert res.rc == 0, res.stderr
    assert host.run("pct", "start", str(vmid)).rc == 0


def run(host: ToolHost, argv: list) -> tuple:
    env = {**host.env, "PATH": f"{host.bin}:/usr/sbin:/usr/bin:/sbin:/bin"}
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    return health.parse(proc.stdout, proc.returncode), time.monotonic() - started, proc


def test_healthy_app_passes_once_it_stayed_up(host):
    start_app(host, 201, "2.3", "198.18.9.1")
    verdict, took, proc = run(host, health.wait_script(201, {"kind": "http", "port": 8080, "path": "/health"},
                                                       "198.18.9.1", timeout=20, settle=2))
    assert verdict and verdict.healthy, proc.stdout + proc.stderr
    assert took < 10


def test_a_passing_check_waits_out_the_settle_window_past_the_deadline(host):
    # CI saw "running for 4 s of the 5 s it must stay up" fail a rollback whose check passed:
    # the timeout is for the check, never a cut of the settle window
    start_app(host, 205, "2.3", "198.18.9.5")
    verdict, _took, proc = run(host, health.wait_script(205, {"kind": "http", "port": 8080, "path": "/health"},
                                                       "198.18.9.5", timeout=1, settle=4))
    assert verdict and verdict.healthy, proc.stdout + proc.stderr


def test_unhealthy_app_fails_at_the_deadline_with_the_checks_output(host):
    start_app(host, 202, "2.1-unhealthy", "198.18.9.2")
    verdict, _took, proc = run(host, health.wait_script(202, {"kind": "http", "port": 8080, "path": "/health"},
                                                       "198.18.9.2", timeout=3, settle=0))
    assert verdict is not None and not verdict.healthy, proc.stdout + proc.stderr
    assert "The requested URL returned error: 500" in verdict.check_output


def test_crashing_entrypoint_is_caught_by_the_settle_window(host):
    start_app(host, 203, "2.2-crash", "198.18.9.3")
    verdict, _took, proc = run(host, health.wait_script(203, {"kind": "tcp", "port": 8080}, "198.18.9.3",
                                                        timeout=30, settle=5))
    assert verdict is not None and not verdict.healthy, proc.stdout
    assert "entrypoint exited" in verdict.why


def test_exec_check_output_and_probe(host):
    start_app(host, 204, "1.0", "198.18.9.4")
    check = {"kind": "exec", "test": ["/bin/sh", "-c", "curl -fsS http://localhost:8080/nope || exit 1"], "timeout": 5}
    verdict, _took, _proc = run(host, health.probe_script(204, check, None))
    assert not verdict.healthy and "returned error: 404" in verdict.check_output
    verdict, _took, _proc = run(host, health.probe_script(204, {"kind": "tcp", "port": 8080}, None))
    assert verdict.healthy
    host.run("pct", "stop", "204")
    verdict, _took, _proc = run(host, health.probe_script(204, {"kind": "none"}, None))
    assert not verdict.healthy and "not running" in verdict.why


def test_the_check_of_an_app():
    from providers import health as app_health
    assert app_health.check_of({"ports": [{"port": 53, "protocol": "udp"}, {"port": 3000, "protocol": "tcp"}]}) == \
        {"kind": "tcp", "port": 3000}
    assert app_health.check_of({"ports": []}) == {"kind": "none"}
    assert app_health.check_of({"health": {"kind": "none"}, "ports": [{"port": 80}]}) == {"kind": "none"}
    assert app_health.check_of({"health": None, "ports": [{"port": 80}]}) == {"kind": "tcp", "port": 80}
    assert app_health.timeout_of({}) == 300 and app_health.timeout_of({"health_timeout": 20}) == 20


def test_hostile_check_values_reach_the_host_quoted(tmp_path):
    """A path or healthcheck argv that would run something if a shell read it unquoted."""
    marker = tmp_path / "pwned"
    check = {"kind": "exec", "test": ["/bin/sh", "-c", "true", f"$(touch {marker})"], "timeout": 2}
    script = health.probe_script(999, check, f"1.2.3.4; touch {marker}")[2]
    assert f"'$(touch {marker})'" in script and f"ip='1.2.3.4; touch {marker}'" in script
    http = health.probe_script(999, {"kind": "http", "port": 80, "path": f"/$(touch {marker})"}, None)[2]
    assert f"'/$(touch {marker})'" in http


def test_a_failing_compose_healthcheck_ends_the_wait_when_docker_would_call_it_unhealthy(host):
    start_app(host, 206, "1.0", "198.18.9.6")
    check = {"kind": "exec", "test": ["/bin/sh", "-c", "curl -fsS http://localhost:8080/nope || exit 1"],
             "timeout": 5, "interval": 1, "retries": 2, "start_period": 0}
    assert health.docker_verdict_after(check) == 2
    verdict, _took, proc = run(host, health.wait_script(206, check, None, timeout=50, settle=1))
    assert verdict is not None and not verdict.healthy, proc.stdout
    assert verdict.why.startswith("unhealthy by its own healthcheck: still failing 2 s after the start"), verdict.why
    assert "returned error: 404" in verdict.check_output


def test_docker_s_verdict_time_counts_the_start_period_and_ignores_the_other_checks():
    exec_check = {"kind": "exec", "test": ["true"], "interval": 30, "retries": 3, "start_period": 60}
    assert health.docker_verdict_after(exec_check) == 150
    assert health.docker_verdict_after({"kind": "http", "port": 80}) is None
    assert health.docker_verdict_after({"kind": "exec", "test": ["true"]}) is None   # a check from before the keys
