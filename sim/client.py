"""Open a paramiko connection to a simulated host, with its host key pinned."""

from __future__ import annotations

import socket

import paramiko
from paramiko.hostkeys import HostKeyEntry


def known_host_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def connect(address: str, port: int, host_key: str, client_key: str,
            user: str = "root", timeout: float = 10.0) -> paramiko.SSHClient:
    """Connect and authenticate; raises paramiko.BadHostKeyException on a key mismatch."""
    name = known_host_name(address, port)
    entry = HostKeyEntry.from_line(f"{name} {host_key}")
    if entry is None:
        raise ValueError(f"unreadable host key: {host_key!r}")
    client = paramiko.SSHClient()
    client.get_host_keys().add(name, entry.key.get_name(), entry.key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    sock = socket.create_connection((address, port), timeout=timeout)
    # Without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms to small request/reply exchanges.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        client.connect(address, port=port, username=user, sock=sock,
                       pkey=paramiko.Ed25519Key.from_private_key_file(client_key),
                       allow_agent=False, look_for_keys=False, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout)
    except BaseException:
        client.close()
        sock.close()
        raise
    return client
