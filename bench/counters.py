"""What the hosts saw, from the simulator's side: SSH connections (sshd's `Accepted
publickey` lines) and remote commands (each host's commands.log), between two marks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sim.testing import SimFleet

# How a command is counted in `by_kind`: the first pattern found in it wins.
KINDS = (
    ('"/nodes/$node/lxc"', "host_read"),     # providers/hosts/hostread.py: every CT at once
    ("homefleet-health", "health_check"),     # providers/hosts/health.py: the gate after a start, a refresh probe
    ("pct create", "ct_create"),              # homefleet's create script also starts and reads back
    ("pct pending", "ct_update"),             # homefleet's update script: pct set + restart if pending
    ("pct destroy", "ct_destroy"),
    ("pct set", "ct_set"),
    ("pct start", "ct_start"),
    ("pct shutdown", "ct_stop"),
    ("pct config", "ct_read"),
    ("pct status", "ct_read"),
    ("/cluster/nextid", "vmid_alloc"),
    ("skopeo copy", "image_pull"),
    ("section:digest@@", "template_read"),    # OciTemplate read: stat + registry check in one exec
    ("skopeo inspect", "image_resolve"),
    ("stat -c", "template_read"),
    ("test -s", "template_read"),
    ("rm -f", "template_delete"),
    ("python3", "ansible_module"),            # Ansible with pipelining: the module arrives on stdin
)


def kind_of(command: str) -> str:
    for needle, kind in KINDS:
        if needle in command:
            return kind
    return "other"


def _accepted(host) -> int:
    try:
        text = (host.state / "sshd.log").read_text(errors="replace")
    except FileNotFoundError:
        return 0
    return text.count("Accepted publickey")


def _commands(host) -> list:
    try:
        lines = (host.state / "commands.log").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def _tool_calls(host) -> list:
    try:
        lines = (host.state / "tools.log").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


@dataclass
class HostActivity:
    connections: int
    commands: list = field(default_factory=list)   # [{"ts", "command", "kind"}]
    tools: list = field(default_factory=list)      # [{"ts", "tool", "argv"}]


def mark(fleet: SimFleet) -> dict:
    return {h.name: (_accepted(h), len(_commands(h)), len(_tool_calls(h))) for h in fleet.hosts}


def since(fleet: SimFleet, start: dict) -> dict:
    """{host: HostActivity} for everything after `start` (a `mark`)."""
    out = {}
    for host in fleet.hosts:
        accepted, ncommands, ntools = start[host.name]
        out[host.name] = HostActivity(_accepted(host) - accepted, _commands(host)[ncommands:],
                                      _tool_calls(host)[ntools:])
    return out


def creates_in_flight(activity: dict, create_seconds: float) -> int:
    """The most `pct create` calls running at once across the fleet: each one sleeps the
    create delay before it unpacks, so it runs at least [start, start + delay]."""
    events = []
    for act in activity.values():
        for call in act.tools:
            if call.get("tool") == "pct" and call.get("argv", [None])[0] == "create":
                events += [(call["ts"], 1), (call["ts"] + create_seconds, -1)]
    best = current = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        current += delta
        best = max(best, current)
    return best


def summary(activity: dict, cts: int) -> dict:
    """The figures of one scenario for one tool."""
    hosts = len(activity) or 1
    commands = [c for a in activity.values() for c in a.commands]
    connections = sum(a.connections for a in activity.values())
    by_kind: dict = {}
    for command in commands:
        kind = kind_of(command["command"])
        by_kind[kind] = by_kind.get(kind, 0) + 1
    per_host_conn = [a.connections for a in activity.values()]
    return {
        "ssh_connections": connections,
        "connections_per_host": max(per_host_conn) if per_host_conn else 0,
        "commands": len(commands),
        "commands_per_ct": round(len(commands) / cts, 2) if cts else None,
        "commands_per_host": round(len(commands) / hosts, 2),
        "by_kind": dict(sorted(by_kind.items())),
        "hosts_busy_max": busy_overlap(activity),
    }


def busy_overlap(activity: dict) -> int:
    """How many hosts were being worked on at once, at most: a host is busy from its first
    to its last command of the scenario (commands.log has start times only)."""
    events = []
    for act in activity.values():
        if act.commands:
            events.append((act.commands[0]["ts"], 1))
            events.append((act.commands[-1]["ts"] + 1e-6, -1))
    best = current = 0
    for _, delta in sorted(events):
        current += delta
        best = max(best, current)
    return best
