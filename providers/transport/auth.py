"""Client credentials: an SSH agent, a key file, or a private key from a Pulumi secret.

The secret key is held in this module (process memory) only; it is set by the
providers' `configure()` from the decrypted stack config and never written anywhere.
"""

import io
import os
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
        except Exception:  # noqa: BLE001 - a parser's message may quote the key: drop it
            continue
    raise ValueError("homefleet:sshKey is not an unencrypted OpenSSH/PEM private key")


def _load_key_file(path: str) -> paramiko.PKey:
    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist")
    for cls in _KEY_CLASSES:
        try:
            return cls.from_private_key_file(path)
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
        except Exception:  # noqa: BLE001 - as above
            continue
    raise ValueError(f"{path} is not an unencrypted private key paramiko can read")


def _own_keys(target: SshTarget) -> list:
    """[(where it came from, key)]: the secret key, then the host's key file."""
    with _lock:
        text = _secret_key_text
    try:
        keys = [("homefleet:sshKey", _load_key_text(text))] if text else []
        if target.key_file:
            keys.append((f"keyFile {target.key_file}", _load_key_file(target.key_file)))
    except ValueError as exc:
        raise TransportError(target.name, f"cannot load the SSH key: {exc}") from None
    return keys


def _open_agent() -> Optional[paramiko.Agent]:
    """The agent at SSH_AUTH_SOCK (it lists its keys on connect); None if there is none."""
    try:
        return paramiko.Agent()
    except (paramiko.SSHException, OSError):
        return None


def tried(keys: list) -> str:
    """'2 keys tried: keyFile /k, ssh-agent (1 key); homefleet:sshKey not set' from [(source, key)]."""
    counts: dict = {}
    for source, _key in keys:
        counts[source] = counts.get(source, 0) + 1
    named = [f"{source} ({n} keys)" if n > 1 else source for source, n in counts.items()]
    unset = [name for name in ("homefleet:sshKey", "keyFile", "ssh-agent")
             if not any(source.split()[0] == name for source in counts)]
    text = f"{len(keys)} key{'s' if len(keys) != 1 else ''} tried: {', '.join(named)}"
    return text + (f"; none from {', '.join(unset)}" if unset else "")


def authenticate(transport: paramiko.Transport, target: SshTarget) -> None:
    """Log in with the secret key, the key file, then the agent's keys, in that order."""
    agent = _open_agent()
    try:
        keys = _own_keys(target) + [("ssh-agent", key) for key in (agent.get_keys() if agent else [])]
        if not keys:
            raise TransportError(
                target.name,
                "no SSH key to log in with: set homefleet:sshKey (pulumi config set --secret), "
                "a keyFile for the host, or load a key into ssh-agent",
            )
        for _source, key in keys:
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
            f"no offered key was accepted for {target.user}@{target.address}:{target.port} "
            f"({tried(keys)}). Add the public key to that user's ~/.ssh/authorized_keys on the host, "
            f"or set the user the host expects (homefleet:hosts: {target.name}: user)",
        )
    finally:
        if agent:
            agent.close()  # agent keys sign through this connection: close only after login
