"""One read of every homefleet CT per host, shared by all `read()` calls of a run.

`pulumi refresh` calls `read()` once per CT, up to 4 at a time. The first call for a host
runs `hostread.read_all_script()` there; calls for the same host that arrive while it
runs wait for it (single flight), and calls after it use its result. So a refresh of N CTs
on one host costs one command, not N.

The cache is module-level (the provider object is pickled into the state and holds no
state of its own) and lives as long as the provider process, i.e. one Pulumi operation.
An entry is also dropped after `TTL` seconds and by `invalidate(target)`, which code that
changes a host calls, so a read never returns what the host looked like before a write.
"""

import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from .errors import HostCommandError
from .hosts import ctops, hostread
from .transport import SshTarget, run

TTL = 30.0
READ_TIMEOUT = 300


@dataclass
class _Entry:
    done: threading.Event = field(default_factory=threading.Event)
    snapshot: Optional[hostread.Snapshot] = None
    error: Optional[BaseException] = None
    taken_at: float = 0.0


_lock = threading.Lock()
_entries: dict = {}
reads = 0  # host reads started in this process (for tests and the benchmark)


def _fetch(target: SshTarget) -> hostread.Snapshot:
    result = run(target, hostread.read_all_script(), timeout=READ_TIMEOUT)
    if not result.ok:
        raise HostCommandError(target.name, "reading the CTs (pvesh get /nodes/<node>/lxc, pct config)", result.stderr)
    try:
        return hostread.parse(result.stdout, result.stderr)
    except ValueError as exc:
        raise HostCommandError(target.name, "reading the CTs", str(exc)) from None


def snapshot(target: SshTarget) -> hostread.Snapshot:
    """The host's snapshot: cached, or read now (once, however many threads ask)."""
    global reads
    key = target.pool_key
    with _lock:
        entry = _entries.get(key)
        fresh = entry is not None and (not entry.done.is_set() or time.monotonic() - entry.taken_at < TTL)
        leader = not fresh
        if leader:
            entry = _Entry()
            _entries[key] = entry
            reads += 1
    if leader:
        try:
            entry.snapshot = _fetch(target)
        except BaseException as exc:
            entry.error = exc
            with _lock:
                if _entries.get(key) is entry:
                    del _entries[key]  # a failure is not cached: the next caller tries again
        finally:
            entry.taken_at = time.monotonic()
            entry.done.set()
    else:
        entry.done.wait()
    if entry.error is not None:
        raise entry.error
    return entry.snapshot


def ct(target: SshTarget, vmid: int) -> Optional[dict]:
    """CT `vmid` as `ctops.parse_readback` shapes it, or None if it does not exist or is not ours.

    When the snapshot cannot tell (the CT was created or destroyed while it was taken),
    the CT is read on its own.
    """
    found, readback = snapshot(target).lookup(vmid)
    if found == "found":
        return readback
    if found == "gone":
        return None
    return read_one(target, vmid)


def read_one(target: SshTarget, vmid: int) -> Optional[dict]:
    """CT `vmid` read on its own (`pct config` + `pct status`), or None if it does not exist."""
    result = run(target, ctops.read_script(vmid))
    if not result.ok:
        if ctops.GONE_MARKER in result.stderr:
            return None
        raise HostCommandError(target.name, f"reading CT {vmid}", result.stderr)
    return ctops.parse_readback(result.stdout)


def invalidate(target: SshTarget) -> None:
    """Forget the host's snapshot: call after any command that may change the host.

    Callers already waiting for a read in flight still get its result; later callers
    read again.
    """
    with _lock:
        _entries.pop(target.pool_key, None)


def clear() -> None:
    with _lock:
        _entries.clear()
