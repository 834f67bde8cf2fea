"""Secrets the providers need at run time, held in process memory only.

`configure()` (run by the dynamic provider server after unpickling, with the decrypted
stack config) fills this; nothing here is ever pickled, returned as an output or logged.
"""

import base64
import json
import threading
from typing import Optional

from .transport import set_private_key

_lock = threading.Lock()
_registries: dict = {}


def load_from_config(config) -> None:
    """`config` is a pulumi.dynamic.Config: reads homefleet:sshKey and homefleet:registries."""
    set_private_key(config.get("sshKey"))
    raw = config.get("registries")
    registries = json.loads(raw) if raw else {}
    with _lock:
        _registries.clear()
        _registries.update(registries or {})


def set_registry(registry: str, username: str, password: str) -> None:
    with _lock:
        _registries[registry] = {"username": username, "password": password}


def auth_file_for(registry: str) -> Optional[bytes]:
    """A containers-auth.json body for `registry`, or None when it needs no credentials."""
    with _lock:
        entry = _registries.get(registry)
    if not entry:
        return None
    token = base64.b64encode(f"{entry['username']}:{entry['password']}".encode()).decode()
    return json.dumps({"auths": {registry: {"auth": token}}}).encode()
