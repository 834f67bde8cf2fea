"""The progress display and the closing table of `python -m homefleet.fleet` (pure)."""

import io
import re

from homefleet.fleet_progress import Progress, is_live
from homefleet.fleet_table import table
from homefleet.fleet_run import Event, Outcome


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_name_the_stack():
    out = io.StringIO()
    progress = Progress(out, ["home", "office"], live=False)
    progress("home", Event("start", "up"))
    progress("office", Event("step", "create ProxmoxCT web"))
    progress.close()
    assert out.getvalue() == "[home] up\n[office] create ProxmoxCT web\n"


def test_live_frame_redraws_one_line_per_stack_in_place():
    out = Tty()
    progress = Progress(out, ["home", "office"], live=True, interval=3600)
    progress("home", Event("start", "up"))
    progress("home", Event("step", "create ProxmoxCT web"))
    progress("home", Event("done", "create ProxmoxCT web done"))
    progress("office", Event("step", "update ProxmoxCT db"))
    progress("office", Event("failed", "update ProxmoxCT db FAILED"))
    progress._draw()
    progress("office", Event("start", "up"))
    progress("office", Event("finish", "failed"))
    progress.close()
    frames = out.getvalue()
    assert "[home]" not in frames
    first, second = frames.split("\x1b[2F")           # the second frame moves up over the first
    assert re.search(r"home    up         +\d+s  1/1 steps  create ProxmoxCT web\n", first), first
    assert re.search(r"office  waiting +1/1 steps, 1 failed  update ProxmoxCT db FAILED\n", first), first
    assert re.search(r"office  failed     +\d+s  1/1 steps, 1 failed  update ProxmoxCT db FAILED\n", second), second


def test_ci_is_never_live(monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("TERM", "xterm")
    assert not is_live(Tty())
    monkeypatch.delenv("CI")
    assert is_live(Tty()) and not is_live(io.StringIO())


def test_table_has_a_row_per_stack_and_the_errors_below():
    text = table([Outcome("home", ok=True, changes=3, duration=12.34),
                  Outcome("office", ok=True, changes=0, duration=75),
                  Outcome("lab", ok=False, duration=2, error="host pve9: connection refused")])
    lines = text.splitlines()
    assert lines[0].split() == ["stack", "result", "changes", "duration"]
    assert lines[2].split() == ["home", "ok", "3", "12.3s"]
    assert lines[3].split() == ["office", "no", "changes", "0", "1m15s"]
    assert lines[4].split() == ["lab", "failed", "0", "2.0s"]
    assert "lab: host pve9: connection refused" in lines
    assert lines[-1] == "2 of 3 stacks succeeded, 1 failed"
