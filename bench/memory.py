"""Peak memory of the dynamic provider process(es) of one Pulumi command.

The engine starts `python -u -m pulumi.dynamic` (cwd = the project) for each pass
(preview, update) and kills it when the pass ends. A thread polls /proc while the command
runs and keeps each such process's VmHWM (its peak resident set, a high-water mark, so a
sample taken any time after the peak is exact).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

POLL_SECONDS = 0.05


def _status_kb(pid: str, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _is_provider(pid: str, workdir: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"pulumi.dynamic" not in cmdline:
            return False
        return os.readlink(f"/proc/{pid}/cwd") == workdir
    except OSError:
        return False


class ProviderSampler:
    def __init__(self, workdir: Path):
        self.workdir = str(Path(workdir).resolve())
        self.peaks: dict = {}          # pid -> VmHWM kB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            for pid in os.listdir("/proc"):
                if pid.isdigit() and (pid in self.peaks or _is_provider(pid, self.workdir)):
                    hwm = _status_kb(pid, "VmHWM")
                    if hwm is not None:
                        self.peaks[pid] = max(self.peaks.get(pid, 0), hwm)
            if self._stop.wait(POLL_SECONDS):
                return

    def __enter__(self) -> "ProviderSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float | None:
        return round(max(self.peaks.values()) / 1024, 1) if self.peaks else None

    @property
    def processes(self) -> int:
        return len(self.peaks)
