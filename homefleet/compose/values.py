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
