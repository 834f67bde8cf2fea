"""The figures the security suite reports at the end of a run (see conftest.py)."""

from __future__ import annotations

from collections import Counter

counts: Counter = Counter()
notes: dict = {}


def add(name: str, n: int = 1) -> None:
    counts[name] += n  # n=0 still records the figure, so a "must be 0" line is printed


LABELS = [
    ("injection.tried", "injection cases tried (pure path, real sh)"),
    ("injection.rejected", "  refused by validation with a located message"),
    ("injection.delivered", "  delivered byte for byte as single arguments"),
    ("injection.ssh.tried", "injection cases over real SSH to simulated hosts"),
    ("injection.ssh.delivered", "  argv in tools.log byte for byte as sent"),
    ("injection.canary", "canary files found (must be 0)"),
    ("faults.points", "fault points covered"),
    ("faults.converged", "  converged on the next run"),
    ("secrets.places", "places searched for secret canaries"),
    ("secrets.found", "secret canaries found (must be 0)"),
    ("corpus.caught", "malformed configs caught with the exact message"),
    ("trust.tried", "trust boundary cases tried (look-alike holders, volumes by path, adopt, env)"),
    ("trust.refused", "  refused with a message, nothing changed"),
    ("trust.foreign_touched", "  foreign objects touched (must be 0)"),
    ("trust.volumes_lost", "  data volumes lost (must be 0)"),
]


def lines() -> list:
    out = []
    for key, label in LABELS:
        if key in counts:
            out.append(f"{label}: {counts[key]}")
    return out
