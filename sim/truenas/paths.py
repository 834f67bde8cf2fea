"""Where the fake TrueNAS tools keep and find things.

`SIM_STATE` is the host's state folder; the middleware's state lives in
`$SIM_STATE/sim/truenas/` (apps, jobs, docker status, one ix-volumes folder per app).
`SIM_ROOT` (default `/`) prefixes real paths such as `/var/log/app_lifecycle.log`, which
the launcher bind-mounts from `$SIM_STATE/var-log/` on a simulated TrueNAS host.
`$SIM_STATE/truenas_version` holds the TrueNAS version (e.g. `25.04.2`).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_VERSION = "25.04.2"
# What `--truenas-version 24.10` and friends mean.
GENERATIONS = {"24.10": "24.10.2.4", "25.04": "25.04.2", "25.10": "25.10.0"}


def state_dir() -> Path:
    value = os.environ.get("SIM_STATE")
    if value:
        return Path(value)
    return host_path("/var/lib/homefleet-sim")


def host_path(real_path: str) -> Path:
    return Path(os.environ.get("SIM_ROOT") or "/") / real_path.lstrip("/")


def middleware_dir() -> Path:
    return state_dir() / "sim" / "truenas"


def lifecycle_log() -> Path:
    return host_path("/var/log/app_lifecycle.log")


def tools_log() -> Path:
    return state_dir() / "tools.log"


def version_file(state: Path | None = None) -> Path:
    return (state or state_dir()) / "truenas_version"


def full_version(text: str) -> str:
    """`24.10` -> `24.10.2.4`; a full version stays as it is."""
    return GENERATIONS.get(text.strip(), text.strip())


def set_version(state: Path, version: str) -> None:
    """Select the TrueNAS version of the host whose state folder is `state`."""
    version_file(state).write_text(full_version(version) + "\n")


def version() -> str:
    try:
        return version_file().read_text().strip() or DEFAULT_VERSION
    except OSError:
        return DEFAULT_VERSION


def version_tuple(text: str | None = None) -> tuple[int, ...]:
    parts = []
    for part in (text or version()).split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


SUDO_ENV = "SIM_SUDO"          # set by the fake sudo for the command it runs (and its children)
SUDO_DIRECT_ENV = "SIM_SUDO_DIRECT"    # ... and for that command only (its children's are sub-commands)


def caller_roles() -> set | None:
    """The caller's middleware roles: None (root, every role) unless `$SIM_STATE/truenas_roles`
    lists them and the call does not run under sudo."""
    if os.environ.get(SUDO_ENV):
        return None
    try:
        text = (state_dir() / "truenas_roles").read_text()
    except OSError:
        return None
    roles = {line.strip() for line in text.splitlines() if line.strip()}
    return None if "FULL_ADMIN" in roles else roles


def sudo_log() -> Path:
    """sudo's JSON event log (TrueNAS: `log_format=json` to syslog, kept by the audit DB)."""
    return state_dir() / "sudo.log"
