"""The fake `midclt`: grammar per generation, job behaviour, states, error formats and exit
codes of the reference. Runs `python -m sim.truenas` as a subprocess against a throw-away
host folder (SIM_STATE, SIM_ROOT in tmp_path), without sshd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.truenas import paths, store

REPO = Path(__file__).resolve().parents[2]
NGINX = "services:\n  web:\n    image: nginx:1.27.3\n    ports: ['8080:80']\n"


class Nas:
    def __init__(self, base: Path, version: str):
        self.state = base / "state"
        self.root = base / "root"
        self.state.mkdir(parents=True)
        self.root.mkdir()
        paths.set_version(self.state, version)
        (self.state / "truenas_timing.json").write_text('{"job_seconds": 0.05, "deploy_seconds": 0.6}')

    def run(self, *args: str, stdin: str | None = None):
        env = {**os.environ, "SIM_STATE": str(self.state), "SIM_ROOT": str(self.root), "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-m", "sim.truenas", "midclt", *args], env=env, cwd=REPO,
                              capture_output=True, text=True, input=stdin, timeout=30)
        return proc.returncode, proc.stdout, proc.stderr

    def call(self, method: str, *args) -> object:
        rc, out, err = self.run("call", method, *[a if isinstance(a, str) else json.dumps(a) for a in args])
        assert rc == 0, err
        return json.loads(out) if out.strip()[:1] in "[{\"n" else out.strip()

    def create(self, name: str = "web", compose: str = NGINX) -> int:
        return int(self.call("app.create", {"app_name": name, "custom_app": True,
                                            "custom_compose_config_string": compose}))

    def job(self, job_id: int, done: bool = True) -> dict:
        if done:
            time.sleep(0.08)
        return self.call("core.get_jobs", [["id", "=", job_id]])[0]

    def state_of(self, name: str = "web") -> str | None:
        found = self.call("app.query", [["name", "=", name]])
        return found[0]["state"] if found else None

    def wait_state(self, want: str, name: str = "web", timeout: float = 10) -> str | None:
        deadline = time.monotonic() + timeout
        while (state := self.state_of(name)) != want and time.monotonic() < deadline:
            time.sleep(0.1)
        return state

    @property
    def lifecycle_log(self) -> str:
        path = self.root / "var/log/app_lifecycle.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def nas25(tmp_path) -> Nas:
    return Nas(tmp_path / "25", "25.04")


@pytest.fixture
def nas24(tmp_path) -> Nas:
    return Nas(tmp_path / "24", "24.10")


# ---------------------------------------------------------------- versions and grammar

@pytest.mark.parametrize("generation, short, long", [
    ("24.10", "24.10.2.4", "TrueNAS-SCALE-24.10.2.4"),
    ("25.04", "25.04.2", "TrueNAS-25.04.2"),
    ("25.10", "25.10.0", "TrueNAS-25.10.0"),
])
def test_version_methods_print_raw_strings(tmp_path, generation, short, long):
    nas = Nas(tmp_path, generation)
    assert nas.run("call", "system.version_short") == (0, short + "\n", "")
    assert nas.run("call", "system.version") == (0, long + "\n", "")


def test_2410_j_takes_a_value_and_swallows_the_method(nas24):
    rc, out, err = nas24.run("call", "-j", "app.create", json.dumps({"app_name": "web"}))
    assert (rc, out) == (1, "") and err == "Method does not exist\n"
    rc, out, _ = nas24.run("call", "-j", "1", "app.query")
    assert (rc, out) == (0, "[]\n")
    rc, out, _ = nas24.run("call", "-job", "app.create", json.dumps(
        {"app_name": "web", "custom_app": True, "custom_compose_config_string": NGINX}))
    assert rc == 0 and json.loads(out)["name"] == "web"


def test_2504_j_is_a_flag_and_job_is_a_usage_error(nas25):
    rc, out, err = nas25.run("call", "-job", "app.query")
    assert rc == 2 and out == "" and "ignored explicit argument 'ob'" in err and err.startswith("usage: midclt call")
    rc, out, _ = nas25.run("call", "-j", "app.create", json.dumps(
        {"app_name": "web", "custom_app": True, "custom_compose_config_string": NGINX}))
    assert rc == 0 and json.loads(out)["state"] == "DEPLOYING"


def test_q_is_global_before_2510_and_on_call_from_2510(tmp_path, nas25):
    assert nas25.run("-q", "call", "app.config", "web") == (1, "", "")
    assert nas25.run("call", "-q", "app.config", "web")[0] == 2
    nas2510 = Nas(tmp_path / "2510", "25.10")
    assert nas2510.run("call", "-q", "app.config", "web") == (1, "", "")
    assert nas2510.run("-q", "call", "app.config", "web")[0] == 2


def test_login_failure_prints_on_stdout_and_exits_0(nas25):
    assert nas25.run("-U", "admin", "-P", "wrong", "call", "system.version") == (
        0, "Failed to login:  Invalid username or password\n", "")
    assert nas25.run("call", "system.version")[1].startswith("TrueNAS-")


def test_stdin_payload_only_from_26(tmp_path, nas25):
    payload = json.dumps({"app_name": "web", "custom_app": True, "custom_compose_config_string": NGINX})
    nas26 = Nas(tmp_path / "26", "26.0.0")
    rc, out, _ = nas26.run("call", "app.create", "-", stdin=payload)
    assert rc == 0 and out.strip().isdigit()
    rc, out, err = nas25.run("call", "app.create", "-", stdin=payload)
    assert rc == 1 and "app_create: Input should be a valid dictionary" in err


def test_every_invocation_is_logged_with_its_exact_argv(nas25):
    nas25.run("call", "app.query", '[["name","=","a b"]]')
    lines = [json.loads(x) for x in (nas25.state / "tools.log").read_text().splitlines()]
    assert lines[-1]["tool"] == "midclt" and lines[-1]["argv"] == ["call", "app.query", '[["name","=","a b"]]']


# ---------------------------------------------------------------- errors

def test_name_rule_is_checked_before_any_job(nas25, nas24):
    bad = json.dumps({"app_name": "Web_1", "custom_app": True, "custom_compose_config_string": NGINX})
    rc, out, err = nas25.run("call", "app.create", bad)
    assert (rc, out) == (1, "")
    assert err.splitlines()[0] == ("[EINVAL] app_create.app_name: String should match pattern "
                                   "'^[a-z]([-a-z0-9]*[a-z0-9])?$'")
    assert "Traceback (most recent call last):" in err
    assert err.rstrip().endswith("22]]")           # `extra`, pretty-printed
    assert nas25.call("core.get_jobs") == []
    rc, _, err = nas24.run("call", "app.create", bad)
    assert rc == 1 and err.splitlines()[0].startswith("[EINVAL] app_create.app_name: Value does not match")


def test_unknown_keys_are_rejected_in_each_generation_s_words(nas25, nas24):
    payload = json.dumps({"app_name": "web", "name": "web", "image": {"repository": "nginx"}})
    assert nas24.run("call", "app.create", payload)[2].splitlines()[:2] == [
        "[EINVAL] app_create.name: Field was not expected", "[EINVAL] app_create.image: Field was not expected"]
    assert nas25.run("call", "app.create", payload)[2].splitlines()[0] == \
        "[EINVAL] app_create.name: Extra inputs are not permitted"


def test_a_job_that_fails_still_prints_its_id_and_exits_0(nas25):
    first = nas25.create()
    assert nas25.job(first)["state"] == "SUCCESS"
    second = nas25.create()                        # same name: fails inside the job
    assert second == first + 1
    job = nas25.job(second)
    assert job["state"] == "FAILED"
    assert job["error"] == "[EEXIST] Application with name web already exists"
    assert job["exc_info"]["errno"] == 17
    assert job["arguments"][0]["custom_compose_config_string"] == "********"


def test_a_job_reports_running_before_it_finishes(nas25):
    (nas25.state / "truenas_timing.json").write_text('{"job_seconds": 1.0, "deploy_seconds": 0.1}')
    job = nas25.job(nas25.create(), done=False)
    assert job["state"] == "RUNNING" and job["result"] is None and job["time_finished"] is None


def test_invalid_yaml_is_a_validation_failure_of_the_job(nas25):
    job = nas25.job(nas25.create(compose="services: [unclosed"))
    assert job["state"] == "FAILED"
    assert job["exc_info"]["type"] == "VALIDATION"
    assert job["exc_info"]["extra"] == [["app_create.custom_compose_config_string", "Invalid YAML provided", 22]]
    assert nas25.state_of() is None


def test_missing_services_fails_validation_in_2510_and_compose_up_before(tmp_path, nas25):
    nas2510 = Nas(tmp_path / "2510", "25.10")
    job = nas2510.job(nas2510.create(compose="volumes: {}\n"))
    assert job["error"] == '[EINVAL] app_create.custom_compose_config_string: YAML is missing required "services" key\n'
    job = nas25.job(nas25.create(compose="volumes: {}\n"))
    assert job["error"] == ("[EFAULT] Failed 'up' action for 'web' app. Please check "
                            "/var/log/app_lifecycle.log for more details")
    assert nas25.state_of() is None                # a failed create leaves nothing behind
    assert "Failed 'up' action for 'web' app" in nas25.lifecycle_log


def test_missing_app_is_enoent(nas25):
    # midclt formats a call's error with the client's ValidationErrors (`ALL`); a job records
    # the middleware's own str(exc) (`None`, a newline per error)
    rc, out, err = nas25.run("call", "app.config", "ghost")
    assert (rc, out) == (1, "") and err.splitlines()[0] == "[ENOENT] ALL: App ghost does not exist"
    job = nas25.job(int(nas25.call("app.stop", "ghost")))
    assert job["state"] == "FAILED" and job["error"] == "[ENOENT] None: App ghost does not exist\n"


def test_j_waits_and_fails_with_the_job_error(nas25):
    nas25.job(nas25.create())
    rc, out, err = nas25.run("call", "-j", "app.create", json.dumps(
        {"app_name": "web", "custom_app": True, "custom_compose_config_string": NGINX}))
    assert (rc, out) == (1, "") and err.startswith("[EEXIST] Application with name web already exists\n")


def test_unknown_method(nas25):
    assert nas25.run("call", "app.frobnicate") == (1, "", "Method does not exist\n")


# ---------------------------------------------------------------- states

def test_deploying_then_running_with_published_ports(nas25):
    nas25.create()
    assert nas25.state_of() == "DEPLOYING"
    assert nas25.wait_state("RUNNING") == "RUNNING"
    entry = nas25.call("app.query", [["name", "=", "web"]])[0]
    assert entry["state"] == "RUNNING" and entry["custom_app"] is True
    assert entry["active_workloads"]["used_ports"] == [
        {"container_port": 80, "protocol": "tcp", "host_ports": [{"host_port": 8080, "host_ip": "0.0.0.0"},
                                                                 {"host_port": 8080, "host_ip": "::"}]}]
    assert "networks" in entry["active_workloads"]


def test_a_crashing_service_without_restart_makes_the_app_crashed(nas25):
    compose = ("services:\n  web:\n    image: nginx:1.27.3\n  worker:\n    image: busybox:1.36\n"
               "    labels:\n      homefleet.test/crash: 'true'\n")
    nas25.create(compose=compose)
    assert nas25.wait_state("CRASHED") == "CRASHED"
    entry = nas25.call("app.query", [["name", "=", "web"]])[0]
    assert entry["state"] == "CRASHED"
    states = {c["service_name"]: c["state"] for c in entry["active_workloads"]["container_details"]}
    assert states == {"web": "running", "worker": "crashed"}
    assert nas25.lifecycle_log == ""          # `up -d` succeeded: app_lifecycle.log only gets failures


def test_a_crash_loop_under_restart_always_is_never_crashed(nas25):
    (nas25.state / "truenas_timing.json").write_text(
        '{"job_seconds": 0.05, "deploy_seconds": 0.05, "loop_seconds": 0.4}')
    nas25.job(nas25.create(compose="services:\n  web:\n    image: crash:1\n    restart: always\n"))
    from sim.truenas.workloads import _loop_running
    # runs 0.1 s, then waits 0.1, 0.2, 0.4, 0.8 s ... before the next restart
    assert [t / 10 for t in range(16) if _loop_running(t / 10 + 0.05, 0.4)] == [0.0, 0.2, 0.5, 1.0]
    seen = set()
    for _ in range(12):
        entry = nas25.call("app.query", [["name", "=", "web"]])[0]
        seen.add((entry["state"], tuple(c["state"] for c in entry["active_workloads"]["container_details"])))
        time.sleep(0.07)
    assert ("STOPPED", ()) in seen                                       # STOPPED shows no workloads
    assert seen <= {("RUNNING", ("running",)), ("STOPPED", ())} and not any(s == "CRASHED" for s, _ in seen)


def test_a_failing_healthcheck_stays_deploying_and_a_dependency_on_it_fails_up(nas25):
    sick = ("services:\n  db:\n    image: pg:1\n    healthcheck: {test: [CMD, 'true'], interval: 1s}\n"
            "    labels: {homefleet.test/unhealthy: 'true'}\n")
    nas25.job(nas25.create(compose=sick))
    time.sleep(0.7)
    assert nas25.state_of() == "DEPLOYING"
    job = nas25.job(nas25.create("app2", sick + "  web:\n    image: nginx:1\n"
                                 "    depends_on: {db: {condition: service_healthy}}\n"))
    assert job["state"] == "FAILED" and "Failed 'up' action for 'app2' app" in job["error"]
    assert "dependency failed to start: container ix-app2-db-1 is unhealthy" in nas25.lifecycle_log


@pytest.mark.parametrize("version, line", [("24.10", "    - 1e3\n"), ("25.04", "    - 1e3\n"),
                                           ("25.10", '    - "1e3"\n')])
def test_the_compose_is_rewritten_per_version_and_containers_see_what_compose_reads(tmp_path, version, line):
    nas = Nas(tmp_path / version, version)
    nas.job(nas.create(compose="services:\n  web:\n    image: nginx:1\n    command: ['1e3']\n"
                                "    environment: {A: '0o17', B: '8E1', C: 'x'}\n"))
    rendered = (nas.state / "sim/truenas/rendered/web.yaml").read_text()
    assert line in rendered
    seen = json.loads((nas.state / "sim/truenas/rendered/web.containers.json").read_text())["web"]
    if version == "25.10":
        assert seen["environment"] == {"A": "0o17", "B": "8E1", "C": "x"} and seen["command"] == ["1e3"]
    else:
        assert seen["environment"] == {"A": "15", "B": "80", "C": "x"} and seen["command"] == ["1000"]
    assert nas.call("app.config", "web")["services"]["web"]["environment"]["A"] == "0o17"


def test_docker_status_needs_docker_read(nas25):
    (nas25.state / "truenas_roles").write_text("APPS_WRITE\n")
    assert nas25.call("app.query") == []
    rc, _, err = nas25.run("call", "docker.status")
    assert rc == 1 and err.startswith("[EACCES] Not authorized\n")
    (nas25.state / "truenas_roles").write_text("DOCKER_WRITE\n")
    assert nas25.call("docker.status")["status"] == "RUNNING"
    assert nas25.run("call", "app.query")[2].startswith("[EACCES] Not authorized")


def test_stop_start_and_an_update_keeps_a_stopped_app_stopped(nas25):
    nas25.job(nas25.create())
    nas25.job(int(nas25.call("app.stop", "web")))
    assert nas25.state_of() == "STOPPED"
    assert nas25.call("app.query", [["name", "=", "web"]])[0]["active_workloads"]["containers"] == 0
    changed = NGINX.replace("1.27.3", "1.27.4")
    job = nas25.job(int(nas25.call("app.update", "web", {"custom_compose_config_string": changed})))
    assert job["state"] == "SUCCESS" and nas25.state_of() == "STOPPED"
    assert nas25.call("app.config", "web")["services"]["web"]["image"] == "nginx:1.27.4"
    nas25.job(int(nas25.call("app.start", "web")))
    assert nas25.wait_state("RUNNING") == "RUNNING"


def test_a_failed_update_is_not_rolled_back(nas25):
    nas25.job(nas25.create())
    broken = NGINX + "    labels: {homefleet.test/fail-up: 'true'}\n"
    job = nas25.job(int(nas25.call("app.update", "web", {"custom_compose_config_string": broken})))
    assert job["state"] == "FAILED" and "Failed 'up' action" in job["error"]
    assert nas25.call("app.config", "web")["services"]["web"]["labels"] == {"homefleet.test/fail-up": "true"}


def test_update_yaml_errors_use_the_create_attribute_before_2510(nas25):
    nas25.job(nas25.create())
    job = nas25.job(int(nas25.call("app.update", "web", {"custom_compose_config_string": "a: [b"})))
    assert job["error"] == "[EINVAL] app_create.custom_compose_config_string: Invalid YAML provided\n"
    job = nas25.job(int(nas25.call("app.update", "web", {"values": {}})))
    assert job["error"] == "[EINVAL] app_update.custom_compose_config: This field is required\n"


def test_delete_keeps_ix_volumes_unless_asked(nas25):
    nas25.job(nas25.create("keep"))
    nas25.job(nas25.create("wipe"))
    mounts = nas25.state / "sim" / "truenas" / "app_mounts"
    nas25.job(int(nas25.call("app.delete", "keep", {"remove_images": True, "remove_ix_volumes": False})))
    nas25.job(int(nas25.call("app.delete", "wipe", {"remove_images": True, "remove_ix_volumes": True})))
    assert nas25.call("app.query") == []
    assert (mounts / "keep").is_dir() and not (mounts / "wipe").exists()


def test_query_is_empty_while_docker_is_stopped(nas25):
    nas25.job(nas25.create())
    store.set_docker_status(nas25.state, "STOPPED")
    assert nas25.call("app.query") == []
    assert nas25.call("docker.status") == {"status": "STOPPED", "description": ""}
    store.set_docker_status(nas25.state, "UNCONFIGURED", "Application(s) are not configured")
    assert nas25.job(nas25.create("other"))["error"] == "[EFAULT] No pool configured for Docker"
    store.set_docker_status(nas25.state, "STOPPED")
    job = nas25.job(nas25.create("other"))
    assert job["error"] == "[EFAULT] Docker service is not running"
    store.set_docker_status(nas25.state, "RUNNING")
    assert [a["name"] for a in nas25.call("app.query")] == ["web"]


def test_image_pull_is_a_job_and_query_lists_docker_s_familiar_names(nas25):
    job = nas25.job(int(nas25.call("app.image.pull", {"image": "docker.io/library/nginx:1.27.3"})))
    assert job["state"] == "SUCCESS", job
    found = nas25.call("app.image.query", [["repo_tags", "rin", "nginx:1.27.3"]],
                       {"select": ["repo_tags", "repo_digests"]})
    assert len(found) == 1 and found[0]["repo_tags"] == ["nginx:1.27.3"]
    assert found[0]["repo_digests"][0].startswith("nginx@sha256:")
    rc, _, err = nas25.run("call", "app.image.pull", json.dumps({"name": "nginx"}))
    assert rc == 1 and "image_pull.name" in err


def test_compose_up_pulls_only_missing_images_and_a_digest_pins_them(nas25):
    pin = "sha256:" + "ab" * 32
    compose = f"services:\n  web:\n    image: nginx:1.27.3\n  pinned:\n    image: ghcr.io/x/y:2@{pin}\n"
    assert nas25.job(nas25.create(compose=compose))["state"] == "SUCCESS"
    running = json.loads((nas25.state / "sim/truenas/rendered/web.images.json").read_text())
    assert running["pinned"]["repo_digests"] == [f"ghcr.io/x/y@{pin}"]
    images = nas25.call("app.image.query")
    assert sorted(t for i in images for t in i["repo_tags"]) == ["<none>:<none>", "nginx:1.27.3"]
