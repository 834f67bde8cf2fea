"""How long simulated jobs and deployments take.

Defaults keep tests quick but make both waits observable; `$SIM_STATE/truenas_timing.json`
(`{"job_seconds": 0.3, "deploy_seconds": 0.4}`) overrides them per host.
"""

from __future__ import annotations

import json

from . import paths

DEFAULTS = {"job_seconds": 0.25, "deploy_seconds": 0.35, "loop_seconds": 0.4}


def _load() -> dict:
    try:
        data = json.loads((paths.state_dir() / "truenas_timing.json").read_text())
    except (OSError, ValueError):
        data = {}
    return {**DEFAULTS, **{k: float(v) for k, v in data.items() if k in DEFAULTS}}


def job_seconds() -> float:
    return _load()["job_seconds"]


def deploy_seconds() -> float:
    return _load()["deploy_seconds"]


def loop_seconds() -> float:
    """One run-and-restart cycle of a crash-looping container (running, then restarting)."""
    return _load()["loop_seconds"]
