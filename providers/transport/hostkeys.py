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
    # The key blob starts with its own type name (a 4-byte length, then the name).
    if blob[4:4 + int.from_bytes(blob[:4], "big")] != parts[0].encode():
        raise ValueError(f"the pinned host key is not a {parts[0]} key (its two words do not belong together)")
    return parts[0], blob


def _known_hosts_names(target: SshTarget) -> list[str]:
    """How known_hosts names this host: `addr` for port 22, always `[addr]:port`."""
    names = [target.address] if target.port == 22 else []
    return names + [f"[{target.address}]:{target.port}"]


def _known_keys(target: SshTarget) -> dict:
    """{key type: key} that known_hosts holds for this host; {} when it has none."""
    path = target.known_hosts or os.path.expanduser("~/.ssh/known_hosts")
    if not os.path.exists(path):
        return {}
    try:
        keys = paramiko.HostKeys(path)
    except OSError as exc:
        raise TransportError(target.name, f"cannot read {path}: {exc.strerror or exc}") from None
    for name in _known_hosts_names(target):
        entry = keys.lookup(name)
        if entry is not None:
            return dict(entry)
    return {}


def _known_hosts_entry(target: SshTarget, key_type: str) -> Optional[paramiko.PKey]:
    known = _known_keys(target)
    if not known:
        return None
    # Known under another key type only: treat as changed.
    return known.get(key_type) or next(iter(known.values()))


# A key type as it appears in a pinned key or known_hosts -> the host-key algorithms
# that make a server offer that key (an RSA key is signed with SHA-2 nowadays).
_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}


def _expected_key_types(target: SshTarget) -> list[str]:
    if target.host_key:
        try:
            return [parse_pinned(target.host_key)[0]]
        except ValueError:
            return []
    return list(_known_keys(target))


def prefer_expected_key_types(options: paramiko.SecurityOptions, target: SshTarget) -> None:
    """Ask the server first for the key type we can check, as OpenSSH's client does.

    A host has several host keys (ed25519, ECDSA, RSA); paramiko would otherwise always
    negotiate ed25519 and then refuse a host whose pinned ECDSA key is right.
    """
    wanted = [alg for kind in _expected_key_types(target) for alg in _ALGORITHMS.get(kind, (kind,))]
    supported = list(options.key_types)
    first = [alg for alg in wanted if alg in supported]
    if first:
        options.key_types = first + [alg for alg in supported if alg not in first]


def _host_key_file(key: paramiko.PKey) -> str:
    kind = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa"}.get(key.get_name(), "ecdsa")
    return f"/etc/ssh/ssh_host_{kind}_key.pub"


def verify(target: SshTarget, offered: paramiko.PKey) -> None:
    """Raise TransportError unless `offered` is the key we expect for this host."""
    offered_line = f"{offered.get_name()} {offered.get_base64()}"
    how_to_pin = (
        f"if this is the right host, pin its key in the stack config: "
        f"homefleet:hosts: {target.name}: hostKey: \"{offered_line}\""
    )
    if target.host_key:
        try:
            key_type, blob = parse_pinned(target.host_key)
        except ValueError as exc:
            raise TransportError(target.name, f"hostKey is not valid: {exc}") from None
        if key_type == offered.get_name() and blob == offered.asbytes():
            return
        raise TransportError(
            target.name,
            f"host key mismatch at {target.address}:{target.port}: the server offered "
            f"{offered.get_name()} {fingerprint(offered)}, which is not the pinned hostKey. "
            f"Someone may be intercepting the connection, or the host was reinstalled; "
            f"check the fingerprint on the host (ssh-keygen -lf {_host_key_file(offered)}), then {how_to_pin}",
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
