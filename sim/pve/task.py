"""Foreground tasks (`fork_worker` in CLI mode).

Worker output, including warnings, goes to stdout. A failed task prints its error on
stderr (newlines folded into spaces, pve-common RESTEnvironment.pm `$tee_worker`) and exits
255 — but only for commands whose CLI entry has an `$upid_exit` handler (pct create, start,
destroy, ...: pve-container src/PVE/CLI/pct.pm). `pct resize` and `pveam download` have none:
they exit 0 however their task ends (`upid_exit=False`). A task that only warned prints
`Task finished with N warning(s)!` on stderr and exits 0.
"""

from __future__ import annotations

import sys
from typing import Callable

from .errors import EXIT_DIE, PveError, fold


class Task:
    def __init__(self) -> None:
        self.warnings = 0

    def log(self, message: str) -> None:
        sys.stdout.write(message.rstrip("\n") + "\n")
        sys.stdout.flush()

    def warn(self, message: str) -> None:
        """`$rpcenv->warn`: counted, printed with a `WARN: ` prefix."""
        self.warnings += 1
        self.log("WARN: " + message)


def run(worker: Callable[[Task], None], upid_exit: bool = True) -> int:
    task = Task()
    try:
        worker(task)
    except PveError as err:
        sys.stdout.flush()
        sys.stderr.write(fold(err.message) + "\n")
        return EXIT_DIE if upid_exit else 0
    sys.stdout.flush()
    if task.warnings:
        sys.stderr.write(f"Task finished with {task.warnings} warning(s)!\n")
    return 0
