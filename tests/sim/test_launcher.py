"""The simulated-host launcher: sshd per host, ForceCommand wrapper, registry, up/down."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
import pytest

from sim import images, launcher, procs, registry
from sim.shell import SFTP_SERVER
from sim.testing import (commands, connect, faults, host_processes, reset_host,
                         run_on, running_fleet, set_faults, set_latency, ssh_run)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pve1(sim_hosts):
    host = sim_hosts["pve1"]
    reset_host(host)
    yield host
    reset_host(host)


def _wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# ---------------------------------------------------------------- hosts.json and state

def test_hosts_json_has_the_contract_shape(sim_hosts):
    data = json.loads(sim_hosts.hosts_json.read_text())
    assert set(data) == {"hosts", "registry", "client_key"}
    assert data["client_key"] == str(sim_hosts.dir / "client_ed25519")
    assert [h["name"] for h in data["hosts"]] == ["pve1", "pve2"]
    for host in data["hosts"]:
        assert set(host) == {"name", "kind", "address", "port", "user", "host_key",
                             "client_key", "state", "pid"}
        assert host["kind"] == "proxmox"
        assert host["address"] == "127.0.0.1" and host["user"] == "root"
        assert isinstance(host["port"], int) and isinstance(host["pid"], int)
        assert host["host_key"].startswith("ssh-ed25519 AAAA")
        assert host["client_key"] == data["client_key"]
        assert host["state"] == str(sim_hosts.dir / host["name"])
        assert procs.is_running(host["pid"])
    assert data["hosts"][0]["port"] != data["hosts"][1]["port"]
    assert set(data["registry"]) == {"address", "pid"}
    assert data["registry"]["address"].startswith("127.0.0.1:")
    assert procs.is_running(data["registry"]["pid"])


def test_state_folder_and_shims(sim_hosts):
    state = sim_hosts["pve1"].state
    assert (state / "etc-pve/nodes/pve1/lxc").is_dir()
    assert (state / "etc-pve/lxc").resolve() == (state / "etc-pve/nodes/pve1/lxc").resolve()
    storage = (state / "etc-pve/storage.cfg").read_text()
    assert "dir: local\n\tpath /var/lib/vz\n\tcontent vztmpl," in storage
    assert "zfspool: local-zfs\n\tpool rpool/data\n\tcontent rootdir,images\n\tsparse 1" in storage
    assert (state / "etc-pve/datacenter.cfg").is_file()
    assert (state / "vz/template/cache").is_dir() and (state / "sim").is_dir()
    assert (state / "latency_ms").read_text().strip() == "0"
    conf = (state / "containers/registries.conf").read_text()
    assert 'unqualified-search-registries = ["docker.io"]' in conf
    for domain in ("docker.io", "ghcr.io", "lscr.io", "quay.io", "gcr.io",
                   "registry.k8s.io", "codeberg.org"):
        assert (f'prefix = "{domain}"\nlocation = "{sim_hosts.registry_address}/{domain}"\n'
                "insecure = true") in conf
    assert "insecureAcceptAnything" in (state / "containers/policy.json").read_text()
    for tool in ("pct", "pvesm", "pvesh", "pveversion", "lxc-info", "pveam"):
        shim = sim_hosts.dir / "bin" / tool
        assert os.access(shim, os.X_OK)
        assert f"-m sim.pve {tool} \"$@\"" in shim.read_text()
    assert not (sim_hosts.dir / "bin/midclt").exists()


# ---------------------------------------------------------------- ssh

def test_ssh_with_client_key_and_pinned_host_key(pve1, sim_hosts):
    rc, out, err = ssh_run(pve1, 'echo "$PATH|$SIM_STATE|$SIM_NODE|$PYTHONPATH"; hostname')
    assert (rc, err) == (0, "")
    env, hostname = out.splitlines()
    assert env == f"{sim_hosts.dir}/bin:/usr/sbin:/usr/bin:/sbin:/bin|{pve1.state}|pve1|{REPO}"
    assert hostname == "pve1"
    rc, out, _ = ssh_run(pve1, ["printf", "%s|", "a b", "it's"])
    assert (rc, out) == (0, "a b|it's|")


def test_wrong_host_key_is_rejected(sim_hosts):
    pve1, pve2 = sim_hosts["pve1"], sim_hosts["pve2"]
    with pytest.raises(paramiko.BadHostKeyException):
        connect(pve1, host_key=pve2.host_key)


def test_command_log_records_commands_in_order(pve1):
    ssh = connect(pve1)
    try:
        for word in ("first", "second", "third"):
            assert run_on(ssh, f"echo {word}")[0] == 0
    finally:
        ssh.close()
    last = commands(pve1)[-3:]
    assert [c["command"] for c in last] == ["echo first", "echo second", "echo third"]
    assert {c["kind"] for c in last} == {"exec"}
    assert last[0]["ts"] <= last[1]["ts"] <= last[2]["ts"]


def test_latency_is_applied_per_command(pve1):
    ssh = connect(pve1)
    try:
        set_latency(pve1, 200)
        t0 = time.monotonic()
        assert run_on(ssh, "true")[0] == 0
        assert time.monotonic() - t0 >= 0.2
    finally:
        ssh.close()


def test_many_channels_on_one_connection(pve1):
    ssh = connect(pve1)
    try:
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda i: run_on(ssh, f"sleep 0.2; echo {i}"), range(20)))
    finally:
        ssh.close()
    assert results == [(0, f"{i}\n", "") for i in range(20)]


# ---------------------------------------------------------------- faults

def test_fault_fail_counts_down_and_is_removed(pve1):
    set_faults(pve1, [{"match": r"^pct start 1\d\d$", "action": "fail", "exit": 42,
                       "stderr": "simulated failure", "times": 2}])
    ssh = connect(pve1)
    try:
        assert run_on(ssh, "pct start 100") == (42, "", "simulated failure\n")
        assert faults(pve1)[0]["times"] == 1
        assert run_on(ssh, "pct start 101") == (42, "", "simulated failure\n")
        assert faults(pve1) == []
        assert run_on(ssh, "echo pct start 102") == (0, "pct start 102\n", "")
    finally:
        ssh.close()


def test_fault_drop_kills_the_connection(pve1):
    set_faults(pve1, [{"match": "^drop-me", "action": "drop", "times": 1}])
    ssh = connect(pve1)
    try:
        assert run_on(ssh, "echo before")[0] == 0
        rc, _, _ = run_on(ssh, "drop-me now", timeout=10)
        assert rc == -1
        assert _wait_until(lambda: not ssh.get_transport().is_active())
    finally:
        ssh.close()
    assert ssh_run(pve1, "echo after") == (0, "after\n", "")     # the host itself is fine


def test_fault_drop_after_ms_cuts_the_connection_while_the_command_runs(pve1, tmp_path):
    """`after_ms`: the command starts (its first output arrives) and the connection dies mid-way."""
    set_faults(pve1, [{"match": "^echo started", "action": "drop", "after_ms": 600, "times": 1}])
    ssh = connect(pve1)
    try:
        chan = ssh.get_transport().open_session()
        chan.exec_command("echo started; sleep 5; echo finished")
        assert chan.recv(100) == b"started\n"
        assert _wait_until(lambda: not ssh.get_transport().is_active())
    finally:
        ssh.close()
    assert ssh_run(pve1, "echo after") == (0, "after\n", "")


def test_fault_hang_blocks_until_the_client_goes(pve1):
    baseline = set(host_processes(pve1))
    set_faults(pve1, [{"match": "^hang-me", "action": "hang"}])
    ssh = connect(pve1)
    try:
        with pytest.raises(TimeoutError):
            run_on(ssh, "hang-me", timeout=0.3)
        chan = ssh.get_transport().open_session()
        chan.exec_command("hang-me")
        chan.shutdown_write()
        time.sleep(0.5)
        assert not chan.exit_status_ready()
        wrappers = [p for p in set(host_processes(pve1)) - baseline
                    if "sim/shell.py" in " ".join(procs.cmdline(p))]
        assert len(wrappers) == 1                                  # still hanging
        chan.close()
        # Once its channel is closed, the hung command ends and leaves no process behind.
        assert procs.wait_gone(wrappers, timeout=5) == []
    finally:
        ssh.close()
    assert _wait_until(lambda: set(host_processes(pve1)) <= baseline)


# ---------------------------------------------------------------- namespaces and files

def test_host_paths_are_the_state_folder(sim_hosts):
    pve1, pve2 = sim_hosts["pve1"], sim_hosts["pve2"]
    rc, out, _ = ssh_run(pve1, "ls /etc/pve; echo 'arch: amd64' > /etc/pve/lxc/990.conf; "
                               "ls /var/lib/vz/template")
    assert rc == 0
    assert {"storage.cfg", "datacenter.cfg", "nodes", "lxc"} <= set(out.split())
    assert (pve1.state / "etc-pve/nodes/pve1/lxc/990.conf").read_text() == "arch: amd64\n"
    assert ssh_run(pve2, "ls /etc/pve/lxc/")[1] == ""           # each host its own /etc/pve
    # The machine itself is untouched: its mount points stay empty.
    for path in ("/etc/pve", "/var/lib/vz", "/run/lock/lxc"):
        assert os.listdir(path) == []
    assert "insecureAcceptAnything" in ssh_run(pve1, "cat /etc/containers/policy.json")[1]
    (pve1.state / "etc-pve/nodes/pve1/lxc/990.conf").unlink()


def test_sftp_put_lands_in_the_state_folder(pve1):
    ssh = connect(pve1)
    try:
        sftp = ssh.open_sftp()
        sftp.putfo(io.BytesIO(b"payload\n"), "/var/lib/vz/template/cache/up.txt")
        sftp.close()
    finally:
        ssh.close()
    target = pve1.state / "vz/template/cache/up.txt"
    assert target.read_bytes() == b"payload\n"
    assert commands(pve1)[-1] == {"ts": commands(pve1)[-1]["ts"], "command": SFTP_SERVER,
                                  "kind": "sftp"}
    target.unlink()


# ---------------------------------------------------------------- registry

def _expected_digest(ref: str) -> str:
    spec = next(s for s in images.fixed_test_images() if s.ref == ref)
    return images.cached_layout(spec, registry.cache_dir())[1]


def test_registry_is_seeded_and_reached_by_real_names(pve1):
    jellyfin = "docker.io/jellyfin/jellyfin:10.10.3"
    rc, out, err = ssh_run(pve1, ["skopeo", "inspect", f"docker://{jellyfin}"])
    assert rc == 0, err
    info = json.loads(out)
    assert info["Digest"] == _expected_digest(jellyfin)
    assert info["Name"] == "docker.io/jellyfin/jellyfin" and "10.10.3" in info["RepoTags"]

    rc, _, err = ssh_run(pve1, "skopeo copy docker://docker.io/library/nginx:1.27 "
                               "oci-archive:/var/lib/vz/template/cache/x.tar")
    assert rc == 0, err
    archive = pve1.state / "vz/template/cache/x.tar"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert {"oci-layout", "index.json"} <= set(names)
    assert any(n.startswith("blobs/sha256/") for n in names)
    archive.unlink()


def test_seeded_image_config_is_realistic(pve1):
    rc, out, err = ssh_run(pve1, "skopeo inspect --config docker://ghcr.io/homefleet/test-app:2.0")
    assert rc == 0, err
    config = json.loads(out)
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    cfg = config["config"]
    assert cfg["Entrypoint"] == ["/app/run.sh"] and cfg["WorkingDir"] == "/app"
    assert "APP_VERSION=2.0" in cfg["Env"] and any(e.startswith("PATH=") for e in cfg["Env"])
    assert cfg["ExposedPorts"] == {"8080/tcp": {}} and cfg["Volumes"] == {"/data": {}}


def test_retag_moves_a_tag_to_a_new_digest(sim_hosts, pve1):
    ref = "ghcr.io/homefleet/retag-probe:1"
    first = registry.push_image(sim_hosts.dir, ref, {"Env": ["PATH=/bin", "PROBE=1"]})
    result = subprocess.run([sys.executable, "-m", "sim", "retag", "--dir", str(sim_hosts.dir), ref],
                            cwd=REPO, capture_output=True, text=True, check=True)
    second = result.stdout.split()[-1]
    assert second.startswith("sha256:") and second != first
    rc, out, _ = ssh_run(pve1, ["skopeo", "inspect", "--no-tags", f"docker://{ref}"])
    assert rc == 0 and json.loads(out)["Digest"] == second


# ---------------------------------------------------------------- up / down

def test_up_down_lifecycle_with_truenas(tmp_path):
    sim_dir = tmp_path / "fleet"
    with running_fleet(sim_dir, hosts=1, truenas=1) as fleet:
        nas1 = fleet["nas1"]
        assert nas1.kind == "truenas" and (sim_dir / "bin/midclt").exists()
        assert "-m sim.truenas midclt" in (sim_dir / "bin/midclt").read_text()
        assert ssh_run(nas1, "hostname")[1] == "nas1\n"
        with pytest.raises(launcher.AlreadyUp):
            launcher.up(sim_dir, hosts=1)

        # Leave work running on the host: a hung command and a background sleep.
        pve1 = fleet["pve1"]
        set_faults(pve1, [{"match": "^hang-me", "action": "hang"}])
        ssh = connect(pve1)
        chan = ssh.get_transport().open_session()
        chan.exec_command("hang-me")
        ssh_run(pve1, "sleep 300 >/dev/null 2>&1 &")
        assert _wait_until(lambda: len(host_processes(pve1)) >= 4)   # sshd, session, hang, sleep
        run = json.loads((sim_dir / "run.json").read_text())
        started = [fleet.registry_pid, run["proxy"]["pid"]]
        started += [h["unshare_pid"] for h in run["hosts"]]
        for host in fleet.hosts:
            started += host_processes(host)
        host_key = pve1.host_key

    ssh.close()
    assert procs.wait_gone(started, timeout=5) == []
    assert not (sim_dir / "hosts.json").exists()
    assert not launcher.is_up(sim_dir)

    # A second `up` on the same folder resumes: same host keys, state kept.
    with running_fleet(sim_dir, hosts=1) as fleet:
        assert fleet["pve1"].host_key == host_key
        assert ssh_run(fleet["pve1"], "echo ok") == (0, "ok\n", "")
