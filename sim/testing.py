"""Helpers for tests that use simulated hosts.

    fleet = SimFleet.load(dir)              # or: with running_fleet(dir, hosts=2) as fleet
    rc, out, err = ssh_run(fleet["pve1"], "pct list")
    set_faults(fleet["pve1"], [{"match": "^pct start", "action": "fail", "times": 1}])
    commands(fleet["pve1"])                 # [{"ts", "command", "kind"}, ...]

Connections pin the host key from hosts.json (paramiko RejectPolicy).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import paramiko

from sim import client, launcher, procs
from sim.shell import faults_locked, read_rules, write_rules


@dataclass(frozen=True)
class SimHost:
    name: str
    kind: str            # "proxmox" | "truenas"
    address: str
    port: int
    user: str
    host_key: str        # "ssh-ed25519 AAAA..."
    client_key: str      # path of the private key
    state: Path          # DIR/<host>
    pid: int             # its sshd

    @classmethod
    def from_json(cls, data: dict) -> "SimHost":
        return cls(name=data["name"], kind=data["kind"], address=data["address"],
                   port=data["port"], user=data["user"], host_key=data["host_key"],
                   client_key=data["client_key"], state=Path(data["state"]), pid=data["pid"])


@dataclass(frozen=True)
class SimFleet:
    dir: Path
    hosts: tuple[SimHost, ...]
    registry_address: str
    registry_pid: int
    client_key: str

    @classmethod
    def load(cls, sim_dir: Path) -> "SimFleet":
        data = json.loads((Path(sim_dir) / "hosts.json").read_text())
        return cls(dir=Path(sim_dir).resolve(),
                   hosts=tuple(SimHost.from_json(h) for h in data["hosts"]),
                   registry_address=data["registry"]["address"],
                   registry_pid=data["registry"]["pid"],
                   client_key=data["client_key"])

    def __getitem__(self, name: str) -> SimHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    @property
    def hosts_json(self) -> Path:
        return self.dir / "hosts.json"


@contextlib.contextmanager
def running_fleet(sim_dir: Path, hosts: int = 2, truenas: int = 0,
                  latency_ms: float = 0, truenas_version: str | None = None) -> Iterator[SimFleet]:
    """`sim up` for the duration of the block; `sim down` however it ends."""
    try:
        launcher.up(sim_dir, hosts=hosts, truenas=truenas, latency_ms=latency_ms,
                    truenas_version=truenas_version)
        yield SimFleet.load(sim_dir)
    finally:
        launcher.down(sim_dir)


# ---------------------------------------------------------------- SSH

def connect(host: SimHost, host_key: str | None = None, timeout: float = 10) -> paramiko.SSHClient:
    """A connected, authenticated client; `host_key` overrides the pinned key."""
    return client.connect(host.address, host.port, host_key or host.host_key,
                          host.client_key, user=host.user, timeout=timeout)


def run_on(ssh: paramiko.SSHClient, command: str | list[str], timeout: float = 60,
           stdin: bytes | str | None = None) -> tuple[int, str, str]:
    """Run one command on an open connection: (exit status, stdout, stderr).

    An argv list is shell-quoted. The exit status is -1 when the connection dies
    before the command reports one; no output for `timeout` seconds raises
    TimeoutError (socket.timeout).
    """
    if not isinstance(command, str):
        command = shlex.join(command)
    chan = ssh.get_transport().open_session(timeout=timeout)
    try:
        chan.settimeout(timeout)
        chan.exec_command(command)
        if stdin is not None:
            chan.sendall(stdin.encode() if isinstance(stdin, str) else stdin)
        chan.shutdown_write()
        out, err = bytearray(), bytearray()
        while True:
            data = chan.recv(65536)          # b"" once the channel is at EOF or closed
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if not data:
                break
            out += data
        if not chan.status_event.wait(timeout):      # set by exit-status or by close
            raise TimeoutError(f"no exit status for {command!r} after {timeout}s")
        rc = chan.exit_status
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        return rc, out.decode(errors="replace"), err.decode(errors="replace")
    finally:
        chan.close()


def ssh_run(host: SimHost, command: str | list[str], timeout: float = 60,
            stdin: bytes | str | None = None) -> tuple[int, str, str]:
    """Connect, run one command, disconnect: (exit status, stdout, stderr)."""
    ssh = connect(host, timeout=timeout)
    try:
        return run_on(ssh, command, timeout=timeout, stdin=stdin)
    finally:
        ssh.close()


# ---------------------------------------------------------------- host state

def _json_lines(path: Path) -> list[dict]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def commands(host: SimHost) -> list[dict]:
    """Every exec/sftp request the host received, in order: {"ts", "command", "kind"}."""
    return _json_lines(host.state / "commands.log")


def tool_calls(host: SimHost) -> list[dict]:
    """Every fake-tool invocation on the host: {"ts", "tool", "argv"}."""
    return _json_lines(host.state / "tools.log")


def clear_logs(host: SimHost) -> None:
    for name in ("commands.log", "tools.log"):
        path = host.state / name
        if path.exists():
            path.write_text("")


def set_faults(host: SimHost, rules: list[dict]) -> None:
    """Replace the host's fault rules (see docs/dev/simulator.md)."""
    with faults_locked(host.state) as path:
        write_rules(path, rules)


def faults(host: SimHost) -> list[dict]:
    with faults_locked(host.state) as path:
        return read_rules(path)


def clear_faults(host: SimHost) -> None:
    set_faults(host, [])


def remove_program(host: SimHost, name: str) -> None:
    """The host as if package `name` were not installed (e.g. skopeo, which PVE only
    recommends): its commands find no `name` on PATH. A folder of links to every program in
    /usr/bin and /bin but that one stands in for them (read by sim/shell.py)."""
    farm = host.state / "sim" / "usr-bin"
    shutil.rmtree(farm, ignore_errors=True)
    farm.mkdir(parents=True)
    for folder in ("/usr/bin", "/bin"):
        for entry in os.scandir(folder):
            if entry.name != name and not (farm / entry.name).exists():
                (farm / entry.name).symlink_to(os.path.join(folder, entry.name))
    (host.state / "system_path").write_text(f"/usr/sbin:{farm}:/sbin\n")


def restore_programs(host: SimHost) -> None:
    (host.state / "system_path").unlink(missing_ok=True)


def set_latency(host: SimHost, ms: float) -> None:
    (host.state / "latency_ms").write_text(f"{ms:g}\n")


def reset_host(host: SimHost) -> None:
    """No fault rules and no latency: the host as `sim up` made it (its state aside)."""
    clear_faults(host)
    set_latency(host, 0)


# ---------------------------------------------------------------- processes

def host_processes(host: SimHost) -> list[int]:
    """Machine pids of every process on the host (its sshd's pid namespace)."""
    try:
        ns = str(Path(f"/proc/{host.pid}/ns/pid").readlink())
    except OSError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str((entry / "ns" / "pid").readlink()) == ns:
                    found.append(int(entry.name))
            except OSError:
                pass
    return [pid for pid in found if procs.is_running(pid)]
