"""One simulated host's sshd: keys, sshd_config, and its start in private namespaces.

Each sshd runs as `unshare --mount --uts --pid --fork --kill-child --mount-proc ...`:
the mount namespace carries the host's bind mounts, the UTS namespace its
hostname, and the pid namespace makes sshd its init, so stopping sshd makes the
kernel kill every process of every session (hung commands, orphans) with it.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sim import hoststate, procs

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
REPO_ROOT = Path(__file__).resolve().parent.parent
SHELL_WRAPPER = REPO_ROOT / "sim" / "shell.py"


@dataclass
class Sshd:
    port: int
    pid: int               # sshd itself (init of its pid namespace), as seen from the machine
    started: int | None
    unshare_pid: int       # its parent, which waits for it
    unshare_started: int | None


def keygen(path: Path, comment: str) -> str:
    """Create an ed25519 key pair at `path` unless present; returns 'ssh-ed25519 AAAA...'."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                        "-f", str(path)], check=True, stdin=subprocess.DEVNULL)
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def _sshd_path(path: Path | str) -> str:
    return str(path).replace("%", "%%")      # sshd expands %-tokens in key file paths


def write_config(state: Path, name: str, port: int, bin_dir: Path, client_pub: str) -> Path:
    ssh = state / "ssh"
    (ssh / "authorized_keys").write_text(client_pub + "\n")
    wrapper = shlex.join([sys.executable, "-I", "-S", str(SHELL_WRAPPER),
                          "--state", str(state), "--node", name, "--bin", str(bin_dir),
                          "--pythonpath", str(REPO_ROOT)])
    config = ssh / "sshd_config"
    config.write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {_sshd_path(ssh / 'ssh_host_ed25519_key')}
PidFile {state / 'sshd.pid'}
AuthorizedKeysFile {_sshd_path(ssh / 'authorized_keys')}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
# Many channels on one connection, and many connections starting at once.
MaxSessions 100
MaxStartups 100:30:200
LoginGraceTime 30
ForceCommand {wrapper}
# Under ForceCommand this line is never run directly: the wrapper sees it as
# SSH_ORIGINAL_COMMAND and execs the sftp server itself.
Subsystem sftp {SFTP_SERVER}
""")
    return config


def _namespace_script(state: Path, name: str, kind: str, config: Path) -> str:
    steps = [shlex.join(["hostname", name])]
    steps += [shlex.join(["mount", "--bind", str(state / sub), target])
              for sub, target in hoststate.mounts(kind)]
    steps.append("exec " + shlex.join([SSHD, "-D", "-f", str(config),
                                       "-E", str(state / "sshd.log")]))
    return " && ".join(steps)


def launch(state: Path, name: str, kind: str, config: Path) -> tuple[subprocess.Popen, int]:
    """Start sshd in its namespaces; returns (unshare process, sshd pid)."""
    argv = ["unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc",
            "--propagation", "private", "sh", "-c", _namespace_script(state, name, kind, config)]
    with open(state / "launch.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        for child in procs.children(proc.pid):
            if procs.comm(child) == "sshd":
                return proc, child
        time.sleep(0.01)
    procs.stop([proc.pid])
    log_text = (state / "launch.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"sshd for {state.name} did not start:\n{log_text}")


def _listening(port: int, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.01)
    return False


def start(state: Path, name: str, kind: str, bin_dir: Path, client_pub: str,
          attempts: int = 3) -> Sshd:
    """Start the host's sshd on a free port; a port taken meanwhile means another try."""
    for _ in range(attempts):
        port = procs.free_port()
        config = write_config(state, name, port, bin_dir, client_pub)
        proc, pid = launch(state, name, kind, config)
        if _listening(port, proc, timeout=10):
            return Sshd(port, pid, procs.start_time(pid), proc.pid, procs.start_time(proc.pid))
        procs.stop([pid, proc.pid])
    log_text = (state / "sshd.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"sshd for {name} does not listen:\n{log_text}")
