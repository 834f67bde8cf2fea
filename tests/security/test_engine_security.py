"""Through the real Pulumi engine: secrets that never leak, a killed `pulumi up` that the next
run repairs, two stacks deploying to one host at once, and a failed upgrade the next run
finishes with the data intact.

Secret canaries: the SSH private key (given as `homefleet:sshKey`, no key file, no agent), a
registry password (`homefleet:registries`, with the auth token derived from it) and an env
secret (`homefleet:secrets`). After create, a secret change, a failing run and destroy, they
are searched for in the state (raw files and `pulumi stack export`), every file of the
project and backend, the simulated hosts' logs and files (CT configs excepted for the env
secret: the app needs it there), every process's command line sampled during the runs, and
all pulumi output including the failing run's error.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sim.engine import LocalProject
from sim.testing import ssh_run, tool_calls

from . import figures
from .faultkit import configs, data_owner, marked, put_data, status
from .live import sampling
from ..engine.helpers import hosts_config

pytestmark = pytest.mark.engine
TOKEN = secrets.token_hex(6)
ENV_CANARY = f"hfEnvCanary{TOKEN}"
ENV_CANARY_2 = f"hfEnvCanaryTwo{TOKEN}"
REGISTRY_CANARY = f"hfRegCanary{TOKEN}"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = LocalProject.create(tmp_path_factory.mktemp("security-project"))
    project.env.pop("SSH_AUTH_SOCK", None)  # the secret key must be the only way in
    return project


def _hosts(fleet, key_file: bool = True) -> dict:
    hosts = hosts_config(fleet)
    if not key_file:
        for entry in hosts.values():
            entry.pop("keyFile", None)
    return hosts


def _private_key_lines(fleet) -> list:
    """The lines of the key file that hold private material (the first ones are a fixed header
    and the public key, which every host has in authorized_keys)."""
    text = Path(fleet.client_key).read_text()
    return [line for line in text.splitlines() if line and not line.startswith("-----")][2:]


def _files_text(root: Path, skip=lambda p: False) -> dict:
    out = {}
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file() or skip(path):
            continue
        try:
            out[str(path)] = path.read_bytes()
        except OSError:
            pass
    return out


def _ct_config(path: Path) -> bool:
    return path.suffix == ".conf" and "lxc" in path.parts


# ---------------------------------------------------------------- secrets

def test_no_secret_canary_appears_anywhere_after_a_full_lifecycle(security_fleet, project):
    fleet, stack = security_fleet, "secrets"
    apps = {"vault": {"host": "pve2", "image": "ghcr.io/homefleet/test-app:1.0", "memory": 128,
                      "volumes": [{"path": "/data", "size": 1}]},
            "nasweb": {"host": "nas1", "compose": "compose/hf-web.yml"}}
    (project.workdir / "compose").mkdir(exist_ok=True)
    (project.workdir / "compose" / "hf-web.yml").write_text(
        "services:\n  web:\n    image: docker.io/library/nginx:1.27\n    ports: ['8080:80']\n")
    project.write_stack(stack, {"homefleet:hosts": _hosts(fleet, key_file=False), "homefleet:apps": apps})
    project.set_secret(stack, "homefleet:sshKey", Path(fleet.client_key).read_text())
    project.set_secret(stack, "homefleet:registries",
                       json.dumps({"ghcr.io": {"username": "hfuser", "password": REGISTRY_CANARY}}))
    project.set_secret(stack, "homefleet:secrets.vault.DB_PASSWORD", ENV_CANARY, path=True)
    runs = []
    pve2 = fleet["pve2"]
    with sampling() as sampler:
        runs.append(project.pulumi("up", "--yes", stack=stack, check=True))
        vmid = marked(pve2, stack, "vault")["cts"][0]
        uploads = [t for t in tool_calls(pve2) if t["tool"] == "pct" and t["argv"][:2] == ["create", str(vmid)]]
        assert uploads, "the CT was made through the secret SSH key"
        env = dict(v.split("=", 1) for k, v in configs(pve2)[vmid]["lxc"] if k == "lxc.environment.runtime")
        assert env.get("DB_PASSWORD") == ENV_CANARY, "the secret reached the app"
        token = f"data-{TOKEN}"
        put_data(pve2, vmid, token)
        project.set_secret(stack, "homefleet:secrets.vault.DB_PASSWORD", ENV_CANARY_2, path=True)
        runs.append(project.pulumi("up", "--yes", stack=stack, check=True))
        # A failing run: the upgrade's new CT does not start. Its error must name host and step
        # and carry no secret; the next run finishes the upgrade with the data.
        apps["vault"]["image"] = "ghcr.io/homefleet/test-app:2.0"
        project.write_stack(stack, {"homefleet:hosts": _hosts(fleet, key_file=False), "homefleet:apps": apps})
        (pve2.state / "tool-faults").write_text(f"pct start {vmid}\t1\tstartup for container '{vmid}' failed\n")
        failed = project.pulumi("up", "--yes", stack=stack)
        (pve2.state / "tool-faults").write_text("")
        runs.append(failed)
        assert not failed.ok and "host pve2" in failed.stdout + failed.stderr, failed
        assert f"creating CT {vmid}" in failed.stdout + failed.stderr
        assert data_owner(pve2, token), "the data survived the failed upgrade"
        runs.append(project.pulumi("up", "--yes", stack=stack, check=True))
        assert "test-app_2.0" in configs(pve2)[vmid]["description"] and status(pve2, vmid) == "running"
        assert len(data_owner(pve2, token)) == 1
        runs.append(project.pulumi("stack", "export", stack=stack, check=True))
        runs.append(project.pulumi("destroy", "--yes", stack=stack, check=True))
    holders = marked(pve2, stack, "vault")["holders"]
    assert marked(pve2, stack, "vault")["cts"] == [] and len(holders) == 1, "destroy keeps the data (no deleteData)"
    assert data_owner(pve2, token), "destroy without deleteData removed the data volume"
    ssh_run(pve2, ["pct", "destroy", str(holders[0]), "--purge", "1"])

    canaries = {"env secret": ENV_CANARY.encode(), "env secret (changed)": ENV_CANARY_2.encode(),
                "registry password": REGISTRY_CANARY.encode(),
                "registry auth token": base64.b64encode(f"hfuser:{REGISTRY_CANARY}".encode())}
    for i, line in enumerate(_private_key_lines(fleet)):
        canaries[f"ssh key line {i}"] = line.encode()
    places = {f"pulumi {' '.join(r.args[:2])} #{i} output": (r.stdout + r.stderr).encode() for i, r in enumerate(runs)}
    places["process command lines"] = sampler.text()
    places.update(_files_text(project.workdir, skip=lambda p: ".venv" in p.parts))
    for host in fleet.hosts:
        places.update(_files_text(host.state))
    # The app's own config on the host is where its env secret belongs (PVE keeps env there).
    found = [(name, where) for name, canary in canaries.items() for where, text in places.items()
             if canary in text and not (name.startswith("env") and _ct_config(Path(where)))]
    figures.add("secrets.places", len(places))
    figures.add("secrets.found", len(found))
    assert sampler.sweeps > 10
    assert not found, f"secret canaries found: {found[:10]}"


# ---------------------------------------------------------------- killed run

def _descendants(pid: int) -> list:
    children: dict = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
            except (OSError, ValueError):
                pass
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _start_time(pid: int):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, IndexError):
        return None


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the pulumi CLI, then the language host and provider it started (by pid, checked
    against their start time), as a crash of the machine running `pulumi up` would."""
    tree = [(pid, _start_time(pid)) for pid in _descendants(proc.pid)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for pid, started in tree:
        if started is not None and _start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _provider_pid(cli_pid: int):
    for pid in _descendants(cli_pid):
        try:
            if b"pulumi.dynamic" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            pass
    return None


def test_killing_pulumi_up_mid_run_then_cancel_and_up_converges(security_fleet, project):
    """The worst moment to die: the host has made CTs that Pulumi has not recorded yet.

    When the first CT starts, the provider process is frozen (SIGSTOP) so the host finishes
    the creates already under way while nothing reaches the state; then the CLI, the language
    host and the provider are killed. `pulumi cancel` and `pulumi up` must converge: every
    app ends with exactly one CT (the leftovers taken over by their marker), no orphans.
    """
    fleet, stack = security_fleet, "killed"
    pve2 = fleet["pve2"]
    apps = {f"k{i}": {"host": "pve2", "image": "docker.io/library/nginx:1.27", "memory": 64} for i in range(3)}
    apps["k3"] = {"host": "pve2", "image": "docker.io/library/nginx:1.27", "memory": 64, "vmid": 7300}
    project.write_stack(stack, {"homefleet:hosts": _hosts(fleet), "homefleet:apps": apps})
    before = set(configs(pve2))
    start = len(tool_calls(pve2))
    proc = subprocess.Popen(["pulumi", "up", "--yes", "--non-interactive", "--stack", stack],
                            cwd=project.workdir, env=project.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(t["tool"] == "pct" and t["argv"][:1] == ["start"] for t in tool_calls(pve2)[start:]):
        assert time.monotonic() < deadline and proc.poll() is None, "pulumi up never started a CT"
        time.sleep(0.01)
    provider = _provider_pid(proc.pid)
    assert provider, "no dynamic provider process found"
    os.kill(provider, signal.SIGSTOP)
    time.sleep(3)  # the creates under way finish on the host; nothing reaches the state
    _kill_tree(proc)
    left = {app: marked(pve2, stack, app)["cts"] for app in apps}
    assert any(left.values()), "the kill left no CT behind: the test did not hit its window"
    locked = project.pulumi("up", "--yes", stack=stack)
    assert not locked.ok and "pulumi cancel" in locked.stderr, locked
    project.pulumi("cancel", "--yes", stack=stack, check=True)
    project.pulumi("up", "--yes", stack=stack, check=True)
    outputs = project.pulumi("stack", "output", "apps", "--json", stack=stack, check=True).json()
    for app in apps:
        found = marked(pve2, stack, app)
        assert found["cts"] == [outputs[app]["vmid"]] and not found["holders"], (app, found)
        assert status(pve2, found["cts"][0]) == "running"
        if left[app]:
            assert left[app] == found["cts"], f"{app}: the CT the killed run made was not taken over"
    assert outputs["k3"]["vmid"] == 7300
    assert set(configs(pve2)) - before == {outputs[a]["vmid"] for a in apps}, "an orphan CT was left"
    assert project.pulumi("preview", "--expect-no-changes", stack=stack).ok
    project.pulumi("destroy", "--yes", stack=stack, check=True)
    assert set(configs(pve2)) == before
    figures.add("faults.points")
    figures.add("faults.converged")


# ---------------------------------------------------------------- two stacks at once

def test_two_stacks_deploying_to_one_host_at_once_never_clash_on_vmids(security_fleet, project):
    fleet = security_fleet
    pve2 = fleet["pve2"]
    before = set(configs(pve2))
    stacks = ("con-a", "con-b")
    for stack in stacks:
        apps = {f"{stack[-1]}{i}": {"host": "pve2", "image": "docker.io/library/nginx:1.27", "memory": 64}
                for i in range(3)}
        project.write_stack(stack, {"homefleet:hosts": _hosts(fleet), "homefleet:apps": apps})
    procs = [subprocess.Popen(["pulumi", "up", "--yes", "--non-interactive", "--stack", stack], cwd=project.workdir,
                              env=project.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for stack in stacks]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    vmids = []
    for stack in stacks:
        outputs = project.pulumi("stack", "output", "apps", "--json", stack=stack, check=True).json()
        for app, entry in outputs.items():
            assert marked(pve2, stack, app)["cts"] == [entry["vmid"]], (stack, app)
            vmids.append(entry["vmid"])
    assert len(set(vmids)) == 6 and set(configs(pve2)) - before == set(vmids)
    procs = [subprocess.Popen(["pulumi", "destroy", "--yes", "--non-interactive", "--stack", stack],
                              cwd=project.workdir, env=project.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for stack in stacks]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert set(configs(pve2)) == before
