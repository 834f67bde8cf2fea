"""Run one command (an argv list) on a host, or upload one file, over the pooled connection."""

import select
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import paramiko
from paramiko.sftp import CMD_HANDLE, CMD_OPEN, SFTP_FLAG_CREATE, SFTP_FLAG_TRUNC, SFTP_FLAG_WRITE

from . import pool
from .errors import TransportError
from .quoting import describe, remote_command_line
from .target import SshTarget

DEFAULT_TIMEOUT = 600.0
MAX_COMMAND_LINE = 32 * 4096 - 1  # Linux MAX_ARG_STRLEN, less the NUL
_CHUNK = 65536
# After the host closed a channel without an exit status, how long to wait to learn
# whether the whole connection went (a drop) or only the command (killed by a signal).
_SETTLE_SECONDS = 0.2


@dataclass(frozen=True)
class Result:
    stdout: str
    stderr: str
    exit_code: int  # -1: the host reported no exit status (the command died of a signal)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


_SSH_ERRORS = (paramiko.SSHException, EOFError, OSError)


def _remaining(target: SshTarget, deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TransportError(target.name, f"{what} timed out")
    return left


def _open_channel(target: SshTarget, deadline: float, kind: str = "session"):
    """A new session channel (or SFTP client); reconnects once if the connection has died.

    Only a connection that is gone (or stopped answering) is replaced: a host that merely
    refuses another channel gets an error, and the other commands on it keep running.
    """
    conn = pool.get(target, timeout=_remaining(target, deadline, "connecting"))
    for attempt in (1, 2):
        wait = min(_remaining(target, deadline, "opening a channel"), pool.CONNECT_TIMEOUT)
        started, chan = time.monotonic(), None
        try:
            chan = conn.transport.open_session(timeout=wait)
            if kind != "sftp":
                return chan
            chan.settimeout(wait)
            chan.invoke_subsystem("sftp")
            return paramiko.SFTPClient(chan)
        except _SSH_ERRORS as exc:
            if chan is not None:
                chan.close()
            unanswered = time.monotonic() - started >= wait
            if conn.alive and not unanswered:
                # The host said no (e.g. MaxSessions). paramiko keeps one "last error" per
                # connection, so the reason may be vague; the connection itself is fine.
                raise TransportError(target.name, f"the host refused an SSH channel: {exc}") from None
            if attempt == 2:
                raise TransportError(target.name, f"cannot open an SSH channel: {exc}") from None
            conn = pool.get(target, timeout=_remaining(target, deadline, "reconnecting"), stale=conn)
    raise AssertionError("unreachable")


def _lost(target: SshTarget, argv: Sequence[str]) -> TransportError:
    return TransportError(
        target.name,
        f"the SSH connection was lost while running '{describe(argv)}'; "
        "the command may or may not have completed",
    )


def _exchange(target: SshTarget, chan: paramiko.Channel, argv: Sequence[str],
              stdin: bytes, deadline: float, timeout: float) -> Result:
    """Feed stdin and read stdout/stderr together (either side may fill its window first)."""
    out, err = bytearray(), bytearray()
    readable = select.poll()  # not select(): a busy process may hold fds above 1024
    readable.register(chan.fileno(), select.POLLIN)
    pending = memoryview(stdin)
    if not pending:
        chan.shutdown_write()
    while True:
        if pending and chan.send_ready():
            try:
                sent = chan.send(pending[:_CHUNK])
            except OSError:
                sent = len(pending)  # the command stopped reading; its exit status tells
            pending = pending[sent:]
            if not pending and not chan.closed:
                chan.shutdown_write()
        while chan.recv_ready():
            out += chan.recv(_CHUNK)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(_CHUNK)
        # The output is complete at EOF, not at the exit status: sshd may send the status
        # while the tail of the output is still on its way.
        if chan.eof_received:
            return _finish(target, chan, argv, out, err, deadline, timeout)
        if chan.closed or not chan.get_transport().is_active():
            if chan.eof_received:  # EOF came just before the close: handled above
                continue
            raise _lost(target, argv)
        left = deadline - time.monotonic()
        if left <= 0:
            raise TransportError(target.name, f"'{describe(argv)}' timed out after {timeout:g} s")
        readable.poll(1000 * min(left, 0.01 if pending else 1.0))


def _finish(target, chan, argv, out: bytearray, err: bytearray, deadline: float, timeout: float) -> Result:
    """After EOF: drain what arrived before it and wait for the exit status."""
    while not chan.status_event.wait(min(max(deadline - time.monotonic(), 0), 1.0)):
        if time.monotonic() >= deadline:
            raise TransportError(target.name, f"'{describe(argv)}' timed out after {timeout:g} s")
    while chan.recv_ready():
        out += chan.recv(_CHUNK)
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(_CHUNK)
    status = chan.exit_status  # stays -1 if the channel closed without one
    if status == -1:
        settle = time.monotonic() + _SETTLE_SECONDS
        while chan.get_transport().is_active() and time.monotonic() < settle:
            time.sleep(0.01)
        if not chan.get_transport().is_active():
            raise _lost(target, argv)
    return Result(out.decode("utf-8", errors="replace"), err.decode("utf-8", errors="replace"), status)


def run(
    target: SshTarget,
    argv: Sequence[str],
    stdin: Optional[bytes] = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Result:
    """Run `argv` on the host; a non-zero exit is a Result, not an exception.

    A command whose connection dies under it raises TransportError and is never re-run:
    it may have done its work. Only opening the channel is retried, once, on a new
    connection.
    """
    command_line = remote_command_line(argv)
    size = len(command_line.encode())
    if size > MAX_COMMAND_LINE:
        # sshd hands the line to the shell as one exec argument: the exec would fail and the
        # channel close without a status, which reads like a lost connection.
        raise TransportError(target.name, f"'{describe(argv)}' is {size} bytes once quoted; Linux runs no "
                                          f"command line over {MAX_COMMAND_LINE} bytes (nothing was sent)")
    deadline = time.monotonic() + timeout
    with pool.channel_slot(target, deadline):
        chan = _open_channel(target, deadline)
        try:
            try:
                chan.exec_command(command_line)
            except _SSH_ERRORS:
                raise _lost(target, argv) from None
            pool.count(target, "commands")
            return _exchange(target, chan, argv, bytes(stdin or b""), deadline, timeout)
        except _SSH_ERRORS:
            raise _lost(target, argv) from None
        finally:
            chan.close()


def _create(sftp: paramiko.SFTPClient, path: str, mode: int) -> paramiko.SFTPFile:
    """Open `path` for writing, created with `mode` from its first instant.

    paramiko's `open()` sends no permissions, so the server creates the file 0666 & umask
    and a later chmod leaves a window where a secret is world-readable. This is the same
    SSH_FXP_OPEN request with the permissions attribute set.
    """
    attrs = paramiko.SFTPAttributes()
    attrs.st_mode = mode
    kind, msg = sftp._request(CMD_OPEN, sftp._adjust_cwd(path),
                              SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_TRUNC, attrs)
    if kind != CMD_HANDLE:
        raise paramiko.SFTPError("expected a file handle")
    return paramiko.SFTPFile(sftp, msg.get_binary(), "wb")


def put(target: SshTarget, data: bytes, remote_path: str, mode: int = 0o600,
        timeout: float = DEFAULT_TIMEOUT) -> None:
    """Write `data` to `remote_path` over SFTP; the file never has wider permissions than `mode`."""
    deadline = time.monotonic() + timeout
    with pool.channel_slot(target, deadline):
        sftp = _open_channel(target, deadline, kind="sftp")
        try:
            sftp.get_channel().settimeout(_remaining(target, deadline, f"upload to {remote_path}"))
            with _create(sftp, remote_path, mode) as handle:
                handle.chmod(mode)  # an existing file keeps its old mode on open: narrow it first
                handle.write(data)
            pool.count(target, "uploads")
        except (*_SSH_ERRORS, paramiko.SFTPError) as exc:
            raise TransportError(target.name, f"upload to {remote_path} failed: {exc}") from None
        finally:
            sftp.close()
