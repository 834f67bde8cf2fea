"""One SSH connection per (address, port, user), shared by every caller in the process.

The pool is module-level on purpose: provider objects are pickled into the Pulumi state
and must hold no sockets, so they ask this module for a connection when they run.
"""

import socket
import threading
from dataclasses import dataclass, field

import paramiko

from .auth import authenticate
from .errors import TransportError
from .hostkeys import verify
from .target import SshTarget

CONNECT_TIMEOUT = 15.0
KEEPALIVE_SECONDS = 30


@dataclass
class Connection:
    target: SshTarget
    transport: paramiko.Transport
    slots: threading.BoundedSemaphore

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
stats = PoolStats()


def _open(target: SshTarget) -> paramiko.Transport:
    try:
        sock = socket.create_connection((target.address, target.port), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise TransportError(
            target.name, f"cannot connect to {target.address}:{target.port}: {exc.strerror or exc}"
        ) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else ~40 ms per channel open
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
        verify(target, transport.get_remote_server_key())
        authenticate(transport, target)
    except TransportError:
        transport.close()
        raise
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        raise TransportError(target.name, f"SSH handshake with {target.address}:{target.port} failed: {exc}") from None
    transport.set_keepalive(KEEPALIVE_SECONDS)
    with _lock:
        stats.count(target.name, "connections_opened")
    return transport


def get(target: SshTarget, *, fresh: bool = False) -> Connection:
    """The live pooled connection for `target`, opening (or re-opening) it if needed."""
    key = target.pool_key
    with _lock:
        conn = _connections.get(key)
        if conn is not None and conn.alive and not fresh:
            return conn
        connect_lock = _connect_locks.setdefault(key, threading.Lock())
    with connect_lock:
        with _lock:
            current = _connections.get(key)
        if current is not None and current.alive and current is not conn:
            return current
        if current is not None:
            current.transport.close()
        transport = _open(target)
        new = Connection(target, transport, threading.BoundedSemaphore(target.max_channels))
        with _lock:
            _connections[key] = new
        return new


def close_all() -> None:
    with _lock:
        conns = list(_connections.values())
        _connections.clear()
    for conn in conns:
        conn.transport.close()
