"""Process helpers: free ports, liveness by pid, stopping by pid."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'
    return raw[raw.rindex(")") + 2:].split()


def is_running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    _reap(pid)
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def start_time(pid: int) -> int | None:
    """Start time in clock ticks since boot: with the pid it names one process for good."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def same_process(pid: int, started: int | None) -> bool:
    """The pid is still the process we recorded (guards against pid reuse)."""
    return is_running(pid) and (started is None or start_time(pid) == started)


def signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until none of `pids` runs; returns those still running at the timeout."""
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if is_running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if is_running(p)]
    return alive


def stop(pids: list[int], timeout: float = 5.0) -> None:
    """SIGTERM, wait, then SIGKILL what is left, and wait for it to be gone."""
    for pid in pids:
        signal_pid(pid, signal.SIGTERM)
    left = wait_gone(pids, timeout)
    for pid in left:
        signal_pid(pid, signal.SIGKILL)
    left = wait_gone(left, 5.0)
    if left:
        raise RuntimeError(f"processes did not exit: {left}")
