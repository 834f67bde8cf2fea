"""A TrueNAS app's health, from `app.query`'s `active_workloads` (issue 15 item 1).

The middleware reports no health status and no restart count of its own
(ix_apps/query.py `translate_resources_to_desired_workflow`, 24.10 to 25.10): a container
is `running` when Docker says running and healthy (or it has no healthcheck), `starting`
when it runs with any other health (`starting` and `unhealthy` alike), `crashed` when it
exited non-zero, `created`, or `exited` (restarting, paused, dead, exited 0). So:

* `healthy(entry, config)` (one look, for `pulumi refresh`): the app is RUNNING and every
  container is `running`, except one-shot services (no restart policy) that finished;
* `wait(...)` (after a create, update or revert): that, seen for `stable` seconds in a row,
  within `timeout` (the app's `healthTimeout`); a crash and a crash loop end it early
  (providers/truenas_settle.py tells them apart).
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from .truenas_settle import LOOPING, Settling, restart_policy, services_of

POLL_FIRST, POLL_MAX = 0.1, 2.0


def healthy(entry: Optional[dict], config) -> bool:
    if not entry or entry.get("state") != "RUNNING":
        return False
    details = (entry.get("active_workloads") or {}).get("container_details") or []
    services = services_of(config)
    return bool(details) and all(
        c.get("state") == "running"
        or (c.get("state") == "exited" and restart_policy(services.get(c.get("service_name"))) not in LOOPING)
        for c in details)


def timeout_of(props: dict) -> Optional[float]:
    """The app's `healthTimeout` (seconds), or None: then the healthchecks' own budget."""
    value = props.get("health_timeout")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def wait(poll: Callable[[], dict], config, stable: float, timeout: Optional[float],
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> tuple:
    """Poll until the app is decided: ("settled", entry) or (verdict, entry with "__report")."""
    tracker = Settling(config, stable, clock(), timeout=timeout)
    delay = POLL_FIRST
    while True:
        entry = poll()
        verdict = tracker.observe(entry, clock())
        if verdict == "settled":
            return verdict, entry
        if verdict is not None:
            return verdict, {"__report": tracker.explain(verdict), **entry}
        sleep(delay)
        delay = min(delay * 1.5, POLL_MAX, stable / 3)
