"""Small value helpers and patterns shared by the compose reader's rules."""

from __future__ import annotations

import difflib
import re
from typing import Iterable, Optional

from .variables import SecretText

ENV_KEY = re.compile(r"^[^=\s]+$")
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
MOUNT_MODES = {"ro", "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy", "shared", "slave", "private",
               "rshared", "rslave", "rprivate"}
PORT = re.compile(r"^(?:(?P<ip>\[[0-9a-fA-F:.]+\]|\d{1,3}(?:\.\d{1,3}){3}):)?(?:(?P<pub>\d+(?:-\d+)?)?:)?"
                   r"(?P<target>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?$")
MAX_PORT_RANGE = 100

# ---------------------------------------------------------------- helpers

def scalar(value):
    """An environment mapping value as compose turns it into text (None stays None)."""
    if value is None or isinstance(value, (str, SecretText)):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value) and "e" not in repr(value):
        return repr(value)
    return str(value)


def has_secret(value) -> bool:
    if isinstance(value, SecretText):
        return True
    if isinstance(value, dict):
        return any(has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(has_secret(v) for v in value)
    return False


def secret_names_in(value) -> list:
    if isinstance(value, SecretText):
        return list(value.names)
    if isinstance(value, dict):
        return [n for v in value.values() for n in secret_names_in(v)]
    if isinstance(value, list):
        return [n for v in value for n in secret_names_in(v)]
    return []


def port_range(text: str) -> Optional[list]:
    low, _, high = text.partition("-")
    low_n, high_n = int(low), int(high or low)
    if not (1 <= low_n <= high_n <= 65535) or high_n - low_n >= MAX_PORT_RANGE:
        return None
    return list(range(low_n, high_n + 1))


def names_text(value) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def did_you_mean(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f"Did you mean {close[0]!r}? " if close else ""


# Keys whose value is a boolean, by their path in the file (`*` is any name or index). After
# interpolation a value is text, so `read_only: ${RO:-false}` reads as compose-go's toBoolean does.
BOOLEAN_KEYS = (
    ("services", "*", "privileged"), ("services", "*", "read_only"), ("services", "*", "init"),
    ("services", "*", "tty"), ("services", "*", "stdin_open"), ("services", "*", "oom_kill_disable"),
    ("services", "*", "use_api_socket"), ("services", "*", "volumes", "*", "read_only"),
    ("services", "*", "volumes", "*", "bind", "create_host_path"), ("services", "*", "volumes", "*", "volume", "nocopy"),
    ("services", "*", "depends_on", "*", "required"), ("services", "*", "depends_on", "*", "restart"),
    ("services", "*", "healthcheck", "disable"), ("services", "*", "env_file", "*", "required"),
    ("volumes", "*", "external"), ("networks", "*", "external"), ("networks", "*", "internal"),
    ("networks", "*", "attachable"), ("networks", "*", "enable_ipv6"), ("networks", "*", "enable_ipv4"),
)
_TRUE = {"y", "yes", "true", "on"}
_FALSE = {"n", "no", "false", "off"}


def boolean(value):
    """true/false, or the text as compose-go's toBoolean reads it; None if it is neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    return None


def booleans(data, fail) -> None:
    """Turn the text values of BOOLEAN_KEYS into booleans in place; `fail(where, message, fix)` for others."""
    for path in BOOLEAN_KEYS:
        _booleans_at(data, path, "", fail)


def _booleans_at(node, path: tuple, where: str, fail) -> None:
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        items = list(node.items()) if head == "*" else [(head, node[head])] if head in node else []
        keys = [(k, f"{where}.{k}" if where else str(k)) for k, _ in items]
    elif isinstance(node, list) and head == "*":
        keys = [(i, f"{where}[{i}]") for i in range(len(node))]
    else:
        return
    for key, at in keys:
        if rest:
            _booleans_at(node[key], rest, at, fail)
            continue
        value = node[key]
        if value is None or isinstance(value, bool):
            continue
        found = boolean(value)
        if found is None:
            fail(at, f"must be true or false (got {value!r})", "Write true or false")
        else:
            node[key] = found
