"""Host-key verification: a pinned key, else known_hosts; never trust on first use."""

import base64
import hashlib
import os
from typing import Optional

import paramiko

from .errors import TransportError
from .target import SshTarget


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_pinned(text: str) -> tuple[str, bytes]:
    """`ssh-ed25519 AAAA... [comment]` -> (key type, key bytes)."""
    parts = text.split()
    if len(parts) < 2:
        raise ValueError("a pinned host key looks like 'ssh-ed25519 AAAA...'")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError as exc:
        raise ValueError("the pinned host key's second word is not base64") from exc
    return parts[0], blob


def _known_hosts_entry(target: SshTarget, key_type: str) -> Optional[paramiko.PKey]:
    path = target.known_hosts or os.path.expanduser("~/.ssh/known_hosts")
    if not os.path.exists(path):
        return None
    keys = paramiko.HostKeys(path)
    names = [target.address] if target.port == 22 else []
    names.append(f"[{target.address}]:{target.port}")
    for name in names:
        entry = keys.lookup(name)
        if entry is None:
            continue
        if key_type in entry:
            return entry[key_type]
        # The host is known, but under another key type: treat as changed.
        return next(iter(entry.values()))
    return None


def verify(target: SshTarget, offered: paramiko.PKey) -> None:
    """Raise TransportError unless `offered` is the key we expect for this host."""
    offered_line = f"{offered.get_name()} {offered.get_base64()}"
    how_to_pin = (
        f"if this is the right host, pin its key in the stack config: "
        f"homefleet:hosts: {target.name}: hostKey: \"{offered_line}\""
    )
    if target.host_key:
        key_type, blob = parse_pinned(target.host_key)
        if key_type == offered.get_name() and blob == offered.asbytes():
            return
        raise TransportError(
            target.name,
            f"host key mismatch at {target.address}:{target.port}: the server offered "
            f"{offered.get_name()} {fingerprint(offered)}, which is not the pinned hostKey. "
            f"Someone may be intercepting the connection, or the host was reinstalled; "
            f"check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then {how_to_pin}",
        )
    known = _known_hosts_entry(target, offered.get_name())
    if known is None:
        raise TransportError(
            target.name,
            f"unknown host key for {target.address}:{target.port}: {offered.get_name()} "
            f"{fingerprint(offered)}. Nothing is trusted on first use; {how_to_pin}, "
            f"or add it to ~/.ssh/known_hosts",
        )
    if known.get_name() != offered.get_name() or known.asbytes() != offered.asbytes():
        raise TransportError(
            target.name,
            f"host key for {target.address}:{target.port} changed: known_hosts has "
            f"{known.get_name()} {fingerprint(known)}, the server offered {offered.get_name()} "
            f"{fingerprint(offered)}. If the host was reinstalled, remove the old entry "
            f"(ssh-keygen -R) or {how_to_pin}",
        )
