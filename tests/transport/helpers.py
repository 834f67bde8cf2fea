"""Plain helpers for the transport tests (fixtures are in conftest.py)."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

from providers import transport
from providers.transport import SshTarget
from sim.testing import SimHost


def target_for(host: SimHost, **overrides) -> SshTarget:
    """The transport's view of a simulated host: its pinned key and the fleet's client key."""
    target = SshTarget(name=host.name, address=host.address, port=host.port, user=host.user,
                       host_key=host.host_key, key_file=host.client_key)
    return replace(target, **overrides)


def accepted_logins(host: SimHost) -> list[str]:
    """sshd's own record of every authenticated connection: its 'Accepted publickey' lines."""
    text = (host.state / "sshd.log").read_text(errors="replace")
    return [line for line in text.splitlines() if line.startswith("Accepted publickey")]


def host_stats(name: str) -> dict:
    empty = {"connections_opened": 0, "commands": 0, "uploads": 0}
    return dict(transport.stats.per_host.get(name, empty))


def ssh_keygen_fingerprint(pub_path: Path | str) -> str:
    """The SHA256 fingerprint as OpenSSH prints it, computed by ssh-keygen (not by us)."""
    out = subprocess.run(["ssh-keygen", "-lf", str(pub_path)], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]


def error_chain_text(exc: BaseException) -> str:
    """Every message in an exception and its causes/contexts, as a traceback would show."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts += [str(exc), repr(exc)]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)
