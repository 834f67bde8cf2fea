"""When a TrueNAS app has settled, and why not: decided from `app.query`'s container states.

TrueNAS's own app state cannot decide it (middleware ix_apps/query.py,
`translate_resources_to_desired_workflow` and `list_apps`):

* a container Docker is restarting shows as `exited` (only an exited container with a
  non-zero code is `crashed`), so a crash loop under `restart: always` flips the app
  between RUNNING and STOPPED (STOPPED when no container runs, and then
  `active_workloads` is empty) and never shows CRASHED;
* a running container whose healthcheck has not passed shows as `starting`, unhealthy or
  not, so a failing healthcheck keeps the app DEPLOYING for ever.

So an app wanted running has settled when, for `stable` seconds in a row, it is RUNNING and
every container is `running`, except containers of services without a restart policy,
which may have finished (`exited`). It has failed when a container is `crashed`, when a
restarting service (one with `restart: always|unless-stopped|on-failure`) is seen
`exited` on `LOOP_SIGHTINGS` polls or the app is seen STOPPED that often (a crash loop),
or when the deadline passes first (a healthcheck that never passes, a container stuck in
`created`). The deadline is the app's `healthTimeout` when given; otherwise it covers the slowest healthcheck (start_period + retries x
(interval + timeout), Docker's defaults 0 s, 3, 30 s, 30 s) plus a grace of 4 x `stable`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

LOOPING = ("always", "unless-stopped", "on-failure")
LOOP_SIGHTINGS = 3
HEALTH_DEFAULTS = {"interval": 30.0, "timeout": 30.0, "retries": 3, "start_period": 0.0}


def duration(value, default: float) -> float:
    """A compose duration (`1m30s`, `500ms`, `10s`) in seconds."""
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ms|us|ns|h|m|s)", str(value)):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    return total


def restart_policy(service) -> str:
    """`no`, `always`, `unless-stopped` or `on-failure` (also from `deploy.restart_policy`)."""
    if not isinstance(service, dict):
        return "no"
    policy = service.get("restart")
    if policy is None:
        condition = ((service.get("deploy") or {}).get("restart_policy") or {}).get("condition")
        policy = {"any": "always", "on-failure": "on-failure", "none": "no"}.get(condition)
    return str(policy or "no").split(":")[0]


def health_budget(service) -> float:
    """Seconds Docker may take to call the service healthy or unhealthy."""
    check = service.get("healthcheck") if isinstance(service, dict) else None
    if not isinstance(check, dict) or check.get("disable") or check.get("test") in (["NONE"], "NONE"):
        return 0.0
    retries = check.get("retries", HEALTH_DEFAULTS["retries"])
    return (duration(check.get("start_period"), HEALTH_DEFAULTS["start_period"])
            + int(retries) * (duration(check.get("interval"), HEALTH_DEFAULTS["interval"])
                              + duration(check.get("timeout"), HEALTH_DEFAULTS["timeout"])))


def services_of(config) -> dict:
    found = config.get("services") if isinstance(config, dict) else None
    return found if isinstance(found, dict) else {}


def deadline_seconds(config, stable: float) -> float:
    budgets = [health_budget(s) for s in services_of(config).values()]
    return stable + max(budgets, default=0.0) + 4 * stable


@dataclass
class Settling:
    """Observations of one app after a create/update/start; `observe` says when it is decided."""
    config: dict
    stable: float
    started: float
    stable_since: Optional[float] = None
    loops: Counter = field(default_factory=Counter)
    stopped_seen: int = 0
    last: dict = field(default_factory=dict)
    timeout: Optional[float] = None        # the app's healthTimeout; None: the healthchecks' budget

    def policy(self, service_name: str) -> str:
        return restart_policy(services_of(self.config).get(service_name))

    def seconds(self) -> float:
        return self.timeout if self.timeout is not None else deadline_seconds(self.config, self.stable)

    def deadline(self) -> float:
        return self.started + self.seconds()

    def observe(self, entry: dict, now: float) -> Optional[str]:
        """'settled', 'crashed', 'looping', 'timeout', or None (keep polling)."""
        self.last = entry
        state = entry.get("state")
        details = (entry.get("active_workloads") or {}).get("container_details") or []
        if state == "CRASHED" or any(c.get("state") == "crashed" for c in details):
            return "crashed"
        if state == "STOPPED":
            self.stopped_seen += 1
        for c in details:
            if c.get("state") == "exited" and self.policy(c.get("service_name")) in LOOPING:
                self.loops[c.get("service_name")] += 1
        healthy = state == "RUNNING" and bool(details) and all(
            c.get("state") == "running" or (c.get("state") == "exited" and self.policy(c.get("service_name"))
                                             not in LOOPING)
            for c in details)
        if healthy:
            self.stable_since = self.stable_since if self.stable_since is not None else now
            if now - self.stable_since >= self.stable:
                return "settled"
        else:
            self.stable_since = None
        if self.stopped_seen >= LOOP_SIGHTINGS or any(n >= LOOP_SIGHTINGS for n in self.loops.values()):
            return "looping"
        if now >= self.deadline():
            return "timeout"
        return None

    def explain(self, verdict: str) -> str:
        """What went wrong, naming services and their states, for the error message."""
        details = (self.last.get("active_workloads") or {}).get("container_details") or []
        states = "; ".join(f"{c.get('service_name')}: {c.get('state')}" for c in details) or "no container running"
        if verdict == "crashed":
            return f"the app is CRASHED: a container exited with an error ({states})"
        if verdict == "looping":
            looping = sorted(self.loops) or sorted(n for n, s in services_of(self.config).items()
                                                   if restart_policy(s) in LOOPING)
            return (f"the app keeps restarting: {', '.join(looping) or 'its containers'} exited and "
                    f"restarted again and again (a crash loop under their restart: policy; TrueNAS shows this "
                    f"as RUNNING/STOPPED, never CRASHED); last seen: {states}")
        waiting = [c.get("service_name") for c in details if c.get("state") == "starting"]
        seconds = round(self.seconds())
        if waiting:
            return (f"{', '.join(waiting)} did not become healthy within {seconds}s (its healthcheck keeps "
                    f"failing; TrueNAS shows the app as DEPLOYING); last seen: {states}")
        return f"the app did not settle within {seconds}s (state {self.last.get('state')}; {states})"
