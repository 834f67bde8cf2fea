"""Reading a simulated PVE host's state the way a user would: over SSH with pct; the suite's
`homefleet:hosts` for a simulated fleet."""

import json

from providers.hosts import pct
from sim.engine import host_entries
from sim.testing import commands, ssh_run, tool_calls

# healthSettle of the suite's hosts: its apps count as healthy after 1 s up (the stack default
# is 5 s); only modules whose images crash a few seconds after their start (test-app:2.2-crash)
# need the full window.
QUICK_SETTLE = 1
CRASH_SETTLE = 5


def hosts_config(fleet, settle: int = QUICK_SETTLE) -> dict:
    """`homefleet:hosts` for a simulated fleet (hosts.json), every host with healthSettle `settle`."""
    return host_entries(json.loads(fleet.hosts_json.read_text())["hosts"], health_settle=settle)


def ct_list(host) -> list:
    rc, out, err = ssh_run(host, ["pct", "list"])
    assert rc == 0, err
    return pct.parse_list(out)


def ct_by_name(host, name: str) -> dict:
    rows = [row for row in ct_list(host) if row["name"] == name]
    assert len(rows) == 1, f"expected one CT named {name} on {host.name}, got {ct_list(host)}"
    return rows[0]


def ct_config(host, vmid: int) -> dict:
    rc, out, err = ssh_run(host, ["pct", "config", str(vmid)])
    assert rc == 0, err
    return pct.parse_config(out)


def templates(host) -> list:
    rc, out, err = ssh_run(host, ["pvesm", "list", "local", "--content", "vztmpl"])
    assert rc == 0, err
    return [line.split()[0] for line in out.splitlines()[1:] if line.strip()]


def command_count(host) -> int:
    return len(commands(host))


def commands_since(host, start: int) -> list:
    return [c["command"] for c in commands(host)[start:]]


def tool_count(host) -> int:
    return len(tool_calls(host))


def tools_since(host, start: int) -> list:
    """argv of every fake PVE tool that actually ran (scripts name steps they may skip)."""
    return [[c["tool"], *c["argv"]] for c in tool_calls(host)[start:]]
