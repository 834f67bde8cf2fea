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


def _blob_fingerprint(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


class KnownHosts:
    """A known_hosts file as OpenSSH reads it: plain entries, `@revoked` keys (refused for the
    hosts they name) and whether `@cert-authority` lines exist (host certificates: not
    supported). paramiko.HostKeys raises on a marker line, so the markers are split off here."""

    def __init__(self, path: str):
        self.path = path
        self.plain, self.revoked = paramiko.HostKeys(), paramiko.HostKeys()
        self.cert_authority = False
        with open(path, encoding="utf-8", errors="replace") as handle:
            for lineno, raw in enumerate(handle, 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                marker = ""
                if line.startswith("@"):
                    marker, _, line = line.partition(" ")
                    line = line.strip()
                if marker == "@cert-authority":
                    self.cert_authority = True
                    continue
                try:
                    entry = paramiko.hostkeys.HostKeyEntry.from_line(line, lineno)
                except (paramiko.hostkeys.InvalidHostKey, paramiko.SSHException, ValueError):
                    entry = None  # OpenSSH skips a line it cannot read; so do we (it trusts nothing)
                if entry is None or marker not in ("", "@revoked"):
                    continue
                into = self.revoked if marker == "@revoked" else self.plain
                for name in entry.hostnames:
                    into.add(name, entry.key.get_name(), entry.key)

    def lookup(self, target: SshTarget, which: paramiko.HostKeys) -> dict:
        for name in _known_hosts_names(target):
            entry = which.lookup(name)
            if entry is not None:
                return dict(entry)
        return {}


def _read_known_hosts(target: SshTarget) -> Optional[KnownHosts]:
    path = target.known_hosts or os.path.expanduser("~/.ssh/known_hosts")
    if not os.path.exists(path):
        return None
    try:
        return KnownHosts(path)
    except OSError as exc:
        raise TransportError(target.name, f"cannot read {path}: {exc.strerror or exc}") from None


def _known_keys(target: SshTarget) -> dict:
    """{key type: key} that known_hosts holds for this host; {} when it has none."""
    known = _read_known_hosts(target)
    return known.lookup(target, known.plain) if known else {}


def _check_revoked(target: SshTarget, offered: paramiko.PKey) -> None:
    """OpenSSH refuses a key that known_hosts marks `@revoked` for this host, pinned or not."""
    known = _read_known_hosts(target)
    revoked = known.lookup(target, known.revoked) if known else {}
    if any(key.asbytes() == offered.asbytes() for key in revoked.values()):
        raise TransportError(
            target.name,
            f"the host key offered at {target.address}:{target.port} ({offered.get_name()} {fingerprint(offered)}) "
            f"is marked @revoked in {known.path}. Refusing to connect; if the host has a new key, check it on the "
            f"host and pin it (hostKey)")


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
    _check_revoked(target, offered)
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
            f"{offered.get_name()} {fingerprint(offered)}, the pinned hostKey is {key_type} "
            f"{_blob_fingerprint(blob)}. "
            f"Someone may be intercepting the connection, or the host was reinstalled; "
            f"check the fingerprint on the host (ssh-keygen -lf {_host_key_file(offered)}), then {how_to_pin}",
        )
    known = _known_hosts_entry(target, offered.get_name())
    if known is None:
        file = _read_known_hosts(target)
        certs = (f" ({file.path} has @cert-authority lines: homefleet does not check host certificates, "
                 "only plain host keys)") if file and file.cert_authority else ""
        raise TransportError(
            target.name,
            f"unknown host key for {target.address}:{target.port}: {offered.get_name()} "
            f"{fingerprint(offered)}{certs}. Nothing is trusted on first use; {how_to_pin}, "
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
