"""One SSH connection per (address, port, user), shared by every caller in the process.

The pool is module-level on purpose: provider objects are pickled into the Pulumi state
and must hold no sockets, so they ask this module for a connection when they run.
"""

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional

import paramiko

from .auth import authenticate
from .errors import TransportError
from .hostkeys import prefer_expected_key_types, verify
from .target import SshTarget

CONNECT_TIMEOUT = 15.0
KEEPALIVE_SECONDS = 30


@dataclass
class Connection:
    target: SshTarget
    transport: paramiko.Transport

    @property
    def alive(self) -> bool:
        return self.transport.is_active()


@dataclass
class PoolStats:
    connections_opened: int = 0
    commands: int = 0
    uploads: int = 0
    per_host: dict = field(default_factory=dict)

    def count(self, host: str, what: str) -> None:
        setattr(self, what, getattr(self, what) + 1)
        host_stats = self.per_host.setdefault(host, {"connections_opened": 0, "commands": 0, "uploads": 0})
        host_stats[what] += 1


_lock = threading.Lock()
_connections: dict = {}
_connect_locks: dict = {}
_channel_slots: dict = {}
stats = PoolStats()


def _open(target: SshTarget, timeout: float) -> paramiko.Transport:
    where = f"{target.address}:{target.port}"
    try:
        sock = socket.create_connection((target.address, target.port), timeout=timeout)
    except OSError as exc:
        reason = "no answer (timed out)" if isinstance(exc, socket.timeout) else exc.strerror or exc
        raise TransportError(target.name, f"cannot connect to {where}: {reason}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else ~40 ms per channel open
    transport = paramiko.Transport(sock)
    transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = timeout
    try:
        prefer_expected_key_types(transport.get_security_options(), target)
        transport.start_client(timeout=timeout)
        verify(target, transport.get_remote_server_key())
        authenticate(transport, target)
    except TransportError:
        transport.close()
        raise
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        raise TransportError(target.name, f"SSH handshake with {where} failed: {exc}") from None
    transport.set_keepalive(KEEPALIVE_SECONDS)
    with _lock:
        stats.count(target.name, "connections_opened")
    return transport


def _reuse(target: SshTarget, conn: Optional[Connection], stale: Optional[Connection]) -> bool:
    """Whether `conn` serves `target`; a target pinning another key is refused, not served."""
    if conn is None or not conn.alive or conn is stale:
        return False
    if (target.host_key, target.known_hosts) != (conn.target.host_key, conn.target.known_hosts):
        verify(target, conn.transport.get_remote_server_key())
    return True


def get(target: SshTarget, *, timeout: float = CONNECT_TIMEOUT,
        stale: Optional[Connection] = None) -> Connection:
    """The live pooled connection for `target`, opening one if there is none.

    `stale` is a connection the caller found broken: it is replaced, unless another
    thread has replaced it already (then that newer connection is returned).
    """
    key = target.pool_key
    with _lock:
        conn = _connections.get(key)
        connect_lock = _connect_locks.setdefault(key, threading.Lock())
    if _reuse(target, conn, stale):
        return conn
    if not connect_lock.acquire(timeout=max(timeout, 0.001)):
        raise TransportError(target.name, "timed out waiting for the SSH connection to open")
    try:
        with _lock:
            conn = _connections.get(key)
        if _reuse(target, conn, stale):
            return conn
        if conn is not None:
            conn.transport.close()
        new = Connection(target, _open(target, min(timeout, CONNECT_TIMEOUT)))
        with _lock:
            _connections[key] = new
        return new
    finally:
        connect_lock.release()


@contextlib.contextmanager
def channel_slot(target: SshTarget, deadline: float) -> Iterator[None]:
    """Hold one of the host's `max_channels` slots until the command is done.

    Taken before the channel is opened, so a host's sshd (MaxSessions, 10 by default) never
    sees more. Slots belong to the host, not to one connection, so they outlive reconnects;
    the first target seen for a host sets the number.
    """
    with _lock:
        slots = _channel_slots.setdefault(target.pool_key, threading.BoundedSemaphore(target.max_channels))
    if not slots.acquire(timeout=max(deadline - time.monotonic(), 0.001)):
        raise TransportError(target.name, f"timed out waiting for one of {target.max_channels} SSH channels")
    try:
        yield
    finally:
        slots.release()


def count(target: SshTarget, what: str) -> None:
    with _lock:
        stats.count(target.name, what)


def close_all() -> None:
    with _lock:
        conns = list(_connections.values())
        _connections.clear()
        _channel_slots.clear()
    for conn in conns:
        conn.transport.close()
