"""Client credentials: an SSH agent, a key file, or a private key from a Pulumi secret.

The secret key is held in this module (process memory) only; it is set by the
providers' `configure()` from the decrypted stack config and never written anywhere.
"""

import io
import threading
from typing import Optional

import paramiko

from .errors import TransportError
from .target import SshTarget

_lock = threading.Lock()
_secret_key_text: Optional[str] = None

_KEY_CLASSES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


def set_private_key(text: Optional[str]) -> None:
    global _secret_key_text
    with _lock:
        _secret_key_text = text or None


def _load_key_text(text: str) -> paramiko.PKey:
    for cls in _KEY_CLASSES:
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise ValueError("homefleet:sshKey is not an unencrypted OpenSSH/PEM private key")


def _load_key_file(path: str) -> paramiko.PKey:
    for cls in _KEY_CLASSES:
        try:
            return cls.from_private_key_file(path)
        except (paramiko.SSHException, ValueError):
            continue
    raise ValueError(f"{path} is not an unencrypted private key paramiko can read")


def candidate_keys(target: SshTarget) -> list:
    """Keys to try, in order: the secret key, the host's key file, then the agent's."""
    keys: list = []
    with _lock:
        text = _secret_key_text
    try:
        if text:
            keys.append(_load_key_text(text))
        if target.key_file:
            keys.append(_load_key_file(target.key_file))
    except (OSError, ValueError) as exc:
        raise TransportError(target.name, f"cannot load the SSH key: {exc}") from None
    try:
        keys.extend(paramiko.Agent().get_keys())
    except paramiko.SSHException:
        pass
    return keys


def authenticate(transport: paramiko.Transport, target: SshTarget) -> None:
    keys = candidate_keys(target)
    if not keys:
        raise TransportError(
            target.name,
            "no SSH key to log in with: set homefleet:sshKey (pulumi config set --secret), "
            "a keyFile for the host, or load a key into ssh-agent",
        )
    for key in keys:
        try:
            transport.auth_publickey(target.user, key)
        except paramiko.AuthenticationException:
            continue
        except paramiko.SSHException as exc:
            raise TransportError(target.name, f"authentication failed: {exc}") from None
        if transport.is_authenticated():
            return
    raise TransportError(
        target.name,
        f"no offered key was accepted for {target.user}@{target.address}:{target.port}",
    )
