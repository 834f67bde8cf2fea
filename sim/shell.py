"""ForceCommand wrapper of a simulated host: log, delay, inject faults, then run the command.

sshd runs it for every exec and subsystem request as
`python -I -S sim/shell.py --state DIR/<host> --node <host> --bin DIR/bin --pythonpath REPO`.
Standard library only, and no imports from `sim`: it starts once per SSH command.

For a subsystem request under ForceCommand, sshd sets SSH_ORIGINAL_COMMAND to the
`Subsystem` line's command, so an sftp request arrives as exactly SFTP_SERVER
(checked empirically with OpenSSH 9.2).
"""

from __future__ import annotations

import _json  # the C encoder alone: `import json` pulls in `re`, ~7 ms per command
import fcntl
import os
import sys
import time
from contextlib import contextmanager

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


# ---------------------------------------------------------------- command log

def log_command(state: str, command: str, kind: str) -> None:
    line = '{"ts": %r, "command": %s, "kind": %s}\n' % (
        time.time(), _json.encode_basestring_ascii(command), _json.encode_basestring_ascii(kind))
    fd = os.open(os.path.join(state, "commands.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())      # one O_APPEND write: lines never interleave
    finally:
        os.close(fd)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def latency_seconds(state: str) -> float:
    try:
        return max(0.0, float(_read(os.path.join(state, "latency_ms")).strip() or 0) / 1000)
    except (OSError, ValueError):
        return 0.0


# ---------------------------------------------------------------- faults

@contextmanager
def faults_locked(state):
    """Hold the host's fault lock; every reader and writer of faults.json takes it.

    Yields the path of faults.json.
    """
    with open(os.path.join(state, "faults.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield os.path.join(state, "faults.json")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_rules(path) -> list[dict]:
    import json
    try:
        rules = json.loads(_read(path))
    except (OSError, ValueError):
        return []
    return rules if isinstance(rules, list) else []


def write_rules(path, rules: list[dict]) -> None:
    import json
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(json.dumps(rules, indent=2))
    os.replace(tmp, path)


def take_fault(state: str, command: str) -> dict | None:
    """The first rule whose `match` regex finds `command`; counts its `times` down."""
    if not os.path.exists(os.path.join(state, "faults.json")):
        return None                     # the common case: no lock, no work
    import re
    with faults_locked(state) as path:
        rules = read_rules(path)
        for i, rule in enumerate(rules):
            try:
                if not re.search(rule.get("match", ""), command):
                    continue
            except re.error:
                continue
            if isinstance(rule.get("times"), int):
                rule["times"] -= 1
                if rule["times"] <= 0:
                    del rules[i]
                write_rules(path, rules)
            return dict(rule)
    return None


def _comm(pid: int) -> str:
    try:
        return _read(f"/proc/{pid}/comm").strip()
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    try:
        raw = _read(f"/proc/{pid}/stat")
        return int(raw[raw.rindex(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def session_process() -> int | None:
    """The sshd process serving this connection: our nearest sshd ancestor.

    Never the listener: that one is the parent of every session process, so the
    nearest sshd above us is always a per-connection one.
    """
    pid = os.getppid()
    while pid > 1:
        if _comm(pid) == "sshd":
            parent = _ppid(pid)
            return pid if _comm(parent) == "sshd" else None
        pid = _ppid(pid)
    return None


def hang_until_disconnected() -> None:
    """Block until the client side of our stdout goes away (channel or connection closed)."""
    import select
    poller = select.poll()
    poller.register(1, 0)          # no events asked: only POLLERR/POLLHUP wake us
    while True:
        if any(ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL)
               for _, ev in poller.poll()):
            return


def drop_later(seconds: float) -> None:
    """The connection is cut `seconds` after the command started, while it runs (a network drop
    mid-command): a detached child SIGKILLs this session's sshd then, if it still serves it."""
    import signal
    pid = session_process()
    if not pid or os.fork():
        return
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        born = _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[19]
        time.sleep(seconds)
        if _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[19] == born:
            os.kill(pid, signal.SIGKILL)
    except (OSError, IndexError):
        pass                        # the session ended before: nothing to cut
    os._exit(0)


def apply_fault(rule: dict) -> None:
    """Carry out a matched rule; never returns (but a delayed `drop`, which runs the command)."""
    action = rule.get("action", "fail")
    if action == "drop" and rule.get("after_ms"):
        drop_later(float(rule["after_ms"]) / 1000)
        return
    if action == "drop":
        import signal
        pid = session_process()
        if pid:
            os.kill(pid, signal.SIGKILL)
        os._exit(255)
    if action == "hang":
        hang_until_disconnected()
        os._exit(255)
    stderr = rule.get("stderr", "")
    if stderr:
        os.write(2, (stderr if stderr.endswith("\n") else stderr + "\n").encode())
    os._exit(int(rule.get("exit", 255)))


# ---------------------------------------------------------------- programs

def system_path(state: str) -> str:
    """`DIR/<host>/system_path`: the host's PATH without the fake tools, when a test removed a
    program (a host without skopeo: sim.testing.remove_program); else the machine's."""
    try:
        return _read(os.path.join(state, "system_path")).strip() or SYSTEM_PATH
    except OSError:
        return SYSTEM_PATH


# ---------------------------------------------------------------- locale

def default_locale(state: str) -> dict[str, str]:
    """`DIR/<host>/locale`: the host's /etc/default/locale (`LANG=de_DE.UTF-8` lines), which
    Debian's sshd PAM stack (pam_env envfile=/etc/default/locale) puts into every session."""
    try:
        text = _read(os.path.join(state, "locale"))
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and (key == "LANG" or key == "LANGUAGE" or key.startswith("LC_")):
            found[key] = value.strip().strip('"')
    return found


# ---------------------------------------------------------------- main

def parse_args(argv: list[str]) -> dict[str, str]:
    """`--state S --node N --bin B --pythonpath P`; argparse would cost ~10 ms per command."""
    names = ("--state", "--node", "--bin", "--pythonpath")
    args = dict(zip(argv[0::2], argv[1::2]))
    if len(argv) != 2 * len(names) or sorted(args) != sorted(names):
        sys.exit(f"usage: shell.py {' '.join(n + ' X' for n in names)}")
    return {k[2:]: v for k, v in args.items()}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    command = os.environ.get("SSH_ORIGINAL_COMMAND")
    kind = "sftp" if command == SFTP_SERVER else "exec"
    log_command(args["state"], command or "", kind)

    delay = latency_seconds(args["state"])
    if delay:
        time.sleep(delay)

    rule = take_fault(args["state"], command or "")
    if rule is not None:
        apply_fault(rule)

    env = dict(os.environ)
    env.update(default_locale(args["state"]))
    env.update(PATH=f"{args['bin']}:{system_path(args['state'])}", SIM_STATE=args["state"],
               SIM_NODE=args["node"], PYTHONPATH=args["pythonpath"])
    sys.stdout.flush()
    if kind == "sftp":
        os.execve(SFTP_SERVER, [SFTP_SERVER], env)
    if command is None:            # no command: an interactive login shell
        os.execve("/bin/sh", ["-sh"], env)
    os.execve("/bin/sh", ["sh", "-c", command], env)


if __name__ == "__main__":
    main()
