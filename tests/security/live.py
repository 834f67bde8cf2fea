"""Helpers for security tests that talk to the simulated hosts through the real providers."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from providers.transport import pool
from sim.testing import SimHost, commands, tool_calls


def target(host: SimHost) -> dict:
    """The `host` input a provider gets for a simulated host (pinned key, key file)."""
    return {"name": host.name, "address": host.address, "port": host.port, "user": host.user,
            "host_key": host.host_key, "key_file": host.client_key}


class HostLog:
    """What a host received from a point on: command lines (commands.log) and tool argv (tools.log)."""

    def __init__(self, host: SimHost):
        self.host = host
        self.commands_at = len(commands(host))
        self.tools_at = len(tool_calls(host))
        with pool._lock:
            per = pool.stats.per_host.get(host.name, {})
            self.sent_at = per.get("commands", 0) + per.get("uploads", 0)

    def commands(self) -> list:
        return [c["command"] for c in commands(self.host)[self.commands_at:]]

    def tools(self) -> list:
        return [[c["tool"], *c["argv"]] for c in tool_calls(self.host)[self.tools_at:]]

    def sent(self) -> int:
        """Exec and SFTP requests this process's transport made to the host since."""
        with pool._lock:
            per = pool.stats.per_host.get(self.host.name, {})
            return per.get("commands", 0) + per.get("uploads", 0) - self.sent_at


class CmdlineSampler:
    """Snapshots of every process's command line on this machine, taken in a thread."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.seen: set = set()
        self.sweeps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sweep(self) -> None:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    self.seen.add((entry / "cmdline").read_bytes())
                except OSError:
                    pass
        self.sweeps += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sweep()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sweep()

    def text(self) -> bytes:
        return b"\n".join(self.seen)


@contextlib.contextmanager
def sampling(interval: float = 0.02):
    with CmdlineSampler(interval) as sampler:
        yield sampler
