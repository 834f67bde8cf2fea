"""More than 4 provider calls at once: widen the dynamic provider server's thread pool.

`python -m pulumi.dynamic` serves the engine with `grpc.server(ThreadPoolExecutor(
max_workers=4))` (pulumi-dynamic-providers.md §5), so whatever `--parallel` says, at most
4 create/read/update/delete calls run at once: on a fleet, 4 hosts are worked on at a time
and the other hosts wait while those wait on their own network and disks.

Every call runs on a thread of that pool, so a call can reach the pool: CPython's
ThreadPoolExecutor starts each worker as `Thread(target=_worker, args=(weakref to the
executor, ...))`. `widen()` raises the pool's `_max_workers` and starts the extra threads.
Nothing else changes: the engine's `--parallel` still bounds the calls in flight, and the
transport still runs at most `max_channels` commands at once per host.

This leans on private CPython attributes. Where they are not what is expected (another
Python, a pulumi that serves differently, a call not made by the provider server) it
changes nothing and the server keeps its 4. HOMEFLEET_PROVIDER_WORKERS sets the size
(1..64; 4 keeps pulumi's own limit). See docs/performance.md for what it buys.
"""

import os
import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

ENV = "HOMEFLEET_PROVIDER_WORKERS"
DEFAULT = 16
LIMITS = (1, 64)
SERVER_MODULE = "pulumi.dynamic.__main__"


def wanted() -> int:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{ENV}={raw!r}: give a whole number of worker threads, {LIMITS[0]} to {LIMITS[1]}") from None
    if not LIMITS[0] <= value <= LIMITS[1]:
        raise ValueError(f"{ENV}={value}: give a number from {LIMITS[0]} to {LIMITS[1]}")
    return value


def _in_provider_server() -> bool:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == SERVER_MODULE


def _calling_pool() -> Optional[ThreadPoolExecutor]:
    args = getattr(threading.current_thread(), "_args", None)
    if not isinstance(args, tuple) or not args or not isinstance(args[0], weakref.ref):
        return None
    pool = args[0]()
    if not isinstance(pool, ThreadPoolExecutor) or not isinstance(getattr(pool, "_max_workers", None), int):
        return None
    return pool


def widen(workers: Optional[int] = None) -> Optional[int]:
    """Raise the provider server's pool to `workers` (default `wanted()`); never lowers it.

    Returns the pool's limit afterwards, or None when it is not running in the provider
    server or cannot reach its pool (and so changed nothing).
    """
    if not _in_provider_server():
        return None
    pool = _calling_pool()
    if pool is None:
        return None
    workers = wanted() if workers is None else workers
    with pool._shutdown_lock:
        if workers > pool._max_workers:
            pool._max_workers = workers
        # Start the threads now: the pool only adds one when a call finds no idle-thread
        # credit, and it keeps a credit per finished call, so it would long stay at 4.
        for _ in range(2 * pool._max_workers + 8):
            if len(pool._threads) >= pool._max_workers:
                break
            pool._adjust_thread_count()
        return pool._max_workers
