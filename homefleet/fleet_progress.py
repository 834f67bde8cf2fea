"""Progress of many stacks at once.

On a terminal, one line per stack redrawn in place a few times a second (its state, seconds
running, how many resource steps finished, the latest); in CI or a pipe, plain lines
`[stack] what happened` as they come, which read well in a log. The closing table is
homefleet/fleet_table.py.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Optional, TextIO

from .fleet_run import Event


def is_live(stream: TextIO) -> bool:
    """Redraw in place only on a real terminal, and never in CI (its logs keep every frame)."""
    return (hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("CI")
            and os.environ.get("TERM", "dumb") != "dumb")


@dataclass
class StackLine:
    state: str = "waiting"
    started: int = 0
    finished: int = 0
    failed: int = 0
    last: str = ""
    since: Optional[float] = None      # monotonic start, while running
    took: Optional[float] = None       # seconds, once finished

    def render(self, name: str, width: int, now: float) -> str:
        seconds = self.took if self.took is not None else (now - self.since if self.since is not None else None)
        clock = f"{seconds:5.0f}s" if seconds is not None else "      "
        steps = f"{self.finished}/{self.started} steps" if self.started else ""
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{name:<{width}}  {self.state:<10} {clock}  {steps}{failed}  {self.last}".rstrip()[:160]


class Progress:
    """Call it as `progress(stack, event)` from any thread; `close()` once all are done."""

    def __init__(self, stream: TextIO, stacks: list, live: bool | None = None, interval: float = 0.25):
        self.stream = stream
        self.live = is_live(stream) if live is None else live
        self.lines = {name: StackLine() for name in stacks}
        self.width = max((len(s) for s in stacks), default=5)
        self.lock = threading.Lock()
        self.drawn = 0
        self.stop = threading.Event()
        self.thread = None
        if self.live:
            self.thread = threading.Thread(target=self._redraw_loop, args=(interval,), daemon=True)
            self.thread.start()

    def __call__(self, stack: str, event: Event) -> None:
        with self.lock:
            line = self.lines.setdefault(stack, StackLine())
            if event.kind == "start":
                line.state = event.text
                line.since = time.monotonic()
            elif event.kind == "step":
                line.started += 1
                line.last = event.text
            elif event.kind == "done":
                line.finished += 1
            elif event.kind == "failed":
                line.finished += 1
                line.failed += 1
                line.last = event.text
            elif event.kind == "error":
                line.last = event.text
            elif event.kind == "finish":
                line.state = event.text
                line.took = time.monotonic() - line.since if line.since is not None else None
            if not self.live:
                self.stream.write(f"[{stack}] {event.text}\n")
                self.stream.flush()

    def frame(self) -> str:
        now = time.monotonic()
        return "\n".join(line.render(name, self.width, now) for name, line in self.lines.items())

    def _draw(self) -> None:
        with self.lock:
            frame = self.frame()
            up = f"\x1b[{self.drawn}F" if self.drawn else ""
            self.stream.write(up + "".join(f"\x1b[2K{row}\n" for row in frame.split("\n")))
            self.stream.flush()
            self.drawn = frame.count("\n") + 1

    def _redraw_loop(self, interval: float) -> None:
        while not self.stop.wait(interval):
            self._draw()

    def close(self) -> None:
        if self.thread:
            self.stop.set()
            self.thread.join()
            self._draw()

