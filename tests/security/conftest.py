"""Security suite: its own simulated fleet, and the figures printed at the end of the run."""

from __future__ import annotations

import json
import os

import pytest

from sim.testing import running_fleet

from . import figures
from .faultkit import wrap_tools


@pytest.fixture(scope="session")
def security_fleet(tmp_path_factory):
    """Two simulated Proxmox hosts and one TrueNAS host, only for this suite, with the tool
    wrappers that let a test fail one step inside a script (faultkit.py)."""
    with running_fleet(tmp_path_factory.mktemp("security-fleet"), hosts=2, truenas=1) as fleet:
        wrap_tools(fleet.dir / "bin")
        yield fleet


def pytest_terminal_summary(terminalreporter):
    found = figures.lines()
    if not found:
        return
    terminalreporter.section("homefleet security figures")
    for line in found:
        terminalreporter.write_line(line)
    path = os.environ.get("HOMEFLEET_SECURITY_FIGURES")
    if path:
        with open(path, "w") as out:
            json.dump(dict(figures.counts), out, indent=2, sort_keys=True)


def pytest_sessionfinish(session):
    fields = figures.notes.get("injection.fields")
    if fields and os.environ.get("HOMEFLEET_SECURITY_VERBOSE"):
        for name, (tried, rejected) in sorted(fields.items()):
            print(f"  {name:34} tried {tried:5}  refused {rejected:5}  delivered {tried - rejected:5}")
