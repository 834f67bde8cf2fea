"""Whether a simulated container is running (`$SIM_STATE/sim/run/<vmid>.json`)."""

from __future__ import annotations

import json
import os
import time

from . import paths


def _path(vmid: int):
    return paths.run_dir() / f"{vmid}.json"


def is_running(vmid: int) -> bool:
    return _path(vmid).exists()


def info(vmid: int) -> dict | None:
    try:
        return json.loads(_path(vmid).read_text())
    except (FileNotFoundError, ValueError):
        return None


def mark_running(vmid: int, hostname: str | None = None) -> None:
    """`hostname`: the CT's UTS name, set from its config at start (lxc.uts.name) and kept
    until the next start: a `pct set --hostname` on a running CT changes only the config."""
    paths.run_dir().mkdir(parents=True, exist_ok=True)
    # a made-up init pid, stable per CT and distinct from real low pids
    data = {"status": "running", "pid": 100000 + vmid % 800000, "started": time.time(),
            "hostname": hostname or f"CT{vmid}"}
    tmp = _path(vmid).with_suffix(f".tmp.{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, _path(vmid))


def mark_stopped(vmid: int) -> None:
    try:
        _path(vmid).unlink()
    except FileNotFoundError:
        pass
