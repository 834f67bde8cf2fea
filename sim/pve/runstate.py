"""Whether a simulated container is running (`$SIM_STATE/sim/run/<vmid>.json`)."""

from __future__ import annotations

import json
import os
import time

from . import ctlog, paths


def _path(vmid: int):
    return paths.run_dir() / f"{vmid}.json"


def _read(vmid: int) -> dict | None:
    try:
        return json.loads(_path(vmid).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _settled(vmid: int) -> dict | None:
    """The run record, after an entrypoint scheduled to exit (`schedule_exit`) has exited: the
    CT is then stopped and the reason is in its log, whichever tool looks first."""
    data = _read(vmid)
    if data and data.get("exits_at") is not None and time.time() >= data["exits_at"]:
        try:
            _path(vmid).unlink()
        except FileNotFoundError:
            return None                 # someone else settled it just now
        ctlog.append(vmid, data.get("exit_line") or "init exited")
        return None
    return data


def is_running(vmid: int) -> bool:
    return _settled(vmid) is not None


def info(vmid: int) -> dict | None:
    return _settled(vmid)


def schedule_exit(vmid: int, seconds: float, line: str) -> None:
    """The entrypoint of the running CT exits `seconds` after the CT started; `line` is logged."""
    data = _read(vmid)
    if data is None:
        return
    data.update(exits_at=data["started"] + float(seconds), exit_line=line)
    _write(vmid, data)


def _write(vmid: int, data: dict) -> None:
    tmp = _path(vmid).with_suffix(f".tmp.{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, _path(vmid))


def mark_running(vmid: int, hostname: str | None = None) -> None:
    """`hostname`: the CT's UTS name, set from its config at start (lxc.uts.name) and kept
    until the next start: a `pct set --hostname` on a running CT changes only the config."""
    paths.run_dir().mkdir(parents=True, exist_ok=True)
    # a made-up init pid, stable per CT and distinct from real low pids
    data = {"status": "running", "pid": 100000 + vmid % 800000, "started": time.time(),
            "hostname": hostname or f"CT{vmid}"}
    _write(vmid, data)


def mark_stopped(vmid: int) -> None:
    try:
        _path(vmid).unlink()
    except FileNotFoundError:
        pass
