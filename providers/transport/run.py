"""Run one command (an argv list) on a host, or upload one file, over the pooled connection."""

import select
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import paramiko

from . import pool
from .errors import TransportError
from .quoting import describe, to_command_line
from .target import SshTarget

DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Result:
    stdout: str
    stderr: str
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _open_channel(target: SshTarget) -> tuple:
    """A new session channel; reconnects once if the pooled connection has died."""
    conn = pool.get(target)
    for attempt in (1, 2):
        try:
            return conn, conn.transport.open_session(timeout=pool.CONNECT_TIMEOUT)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if attempt == 2:
                raise TransportError(target.name, f"cannot open an SSH channel: {exc}") from None
            conn = pool.get(target, fresh=True)
    raise AssertionError("unreachable")


def _collect(target: SshTarget, chan: paramiko.Channel, argv: Sequence[str], deadline: float) -> Result:
    out, err = bytearray(), bytearray()
    while True:
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
            break
        if chan.closed or not chan.get_transport().is_active():
            if chan.exit_status_ready():
                continue
            raise TransportError(
                target.name,
                f"the SSH connection was lost while running '{describe(argv)}'; "
                "the command may or may not have completed",
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            chan.close()
            raise TransportError(target.name, f"'{describe(argv)}' timed out")
        select.select([chan], [], [], min(remaining, 1.0))
    return Result(
        out.decode("utf-8", errors="replace"),
        err.decode("utf-8", errors="replace"),
        chan.recv_exit_status(),
    )


def run(
    target: SshTarget,
    argv: Sequence[str],
    stdin: Optional[bytes] = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Result:
    """Run `argv` on the host; a non-zero exit is a Result, not an exception."""
    command_line = to_command_line(argv)
    deadline = time.monotonic() + timeout
    conn, chan = _open_channel(target)
    with conn.slots:
        try:
            chan.exec_command(command_line)
            with pool._lock:
                pool.stats.count(target.name, "commands")
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            return _collect(target, chan, argv, deadline)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransportError(
                target.name,
                f"the SSH connection failed while running '{describe(argv)}': {exc}; "
                "the command may or may not have completed",
            ) from None
        finally:
            chan.close()


def put(target: SshTarget, data: bytes, remote_path: str, mode: int = 0o600) -> None:
    """Write `data` to `remote_path` over SFTP; the mode is set before any byte is written."""
    conn = pool.get(target)
    for attempt in (1, 2):
        try:
            sftp = paramiko.SFTPClient.from_transport(conn.transport)
            break
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if attempt == 2:
                raise TransportError(target.name, f"cannot open SFTP: {exc}") from None
            conn = pool.get(target, fresh=True)
    with conn.slots:
        try:
            with sftp.open(remote_path, "wb") as handle:
                handle.chmod(mode)
                handle.write(data)
            with pool._lock:
                pool.stats.count(target.name, "uploads")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransportError(target.name, f"upload to {remote_path} failed: {exc}") from None
        finally:
            sftp.close()
