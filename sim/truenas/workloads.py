"""What the fake Docker would run for a compose config: containers, ports, volumes, state.

Test hooks, per service (labels as a mapping or a `key=value` list):
* `homefleet.test/crash: "true"`, or an image whose name contains `crash`: the container
  exits non-zero once deployed. Without a restart policy it stays exited, so the app is
  CRASHED; under `restart: always|unless-stopped|on-failure` Docker restarts it again and
  again (a crash loop): it runs for `loop_seconds`/4, then is `restarting` for a delay that
  doubles each time (from `loop_seconds`/4), which TrueNAS shows as `exited` (and the app as
  STOPPED when no container runs), never as CRASHED;
* `homefleet.test/unhealthy: "true"`, or an image tagged `*-unhealthy`, on a service with
  a `healthcheck:`: the check never
  passes, so the container stays running but not healthy, which TrueNAS shows as
  `starting` (the app stays DEPLOYING); a service with a passing healthcheck is `starting`
  until one interval after it started;
* `homefleet.test/fail-up: "true"`: `docker compose up` fails, so the job fails with
  EFAULT `Failed 'up' action ...`.

The container states are mapped as `translate_resources_to_desired_workflow`
(ix_apps/query.py) maps Docker's: running+healthy or running without a healthcheck ->
`running`; running with any other health -> `starting`; created -> `created`; exited with
a non-zero code -> `crashed`; everything else (restarting, paused, dead, exited 0) ->
`exited`. A port published without a host IP is listed twice, for 0.0.0.0 and ::, as
Docker reports it.
"""

from __future__ import annotations

import hashlib
import re

CRASH_LABEL = "homefleet.test/crash"
UNHEALTHY_LABEL = "homefleet.test/unhealthy"
LOOPING = ("always", "unless-stopped", "on-failure")
FAIL_UP_LABEL = "homefleet.test/fail-up"


def services(config) -> dict:
    found = config.get("services") if isinstance(config, dict) else None
    return found if isinstance(found, dict) else {}


def labels(service: dict) -> dict:
    raw = service.get("labels") if isinstance(service, dict) else None
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return dict(str(item).split("=", 1) if "=" in str(item) else (str(item), "") for item in raw)
    return {}


def _true(value: str | None) -> bool:
    return str(value).lower() in ("true", "1", "yes")


def crashes(name: str, service: dict) -> bool:
    return _true(labels(service).get(CRASH_LABEL)) or "crash" in str(service.get("image", ""))


def unhealthy(service: dict) -> bool:
    """The service's healthcheck never passes: the label, or an image tagged `*-unhealthy`
    (the test images, BRIEF: `test-app:2.1-unhealthy` answers its health path with 500)."""
    return _true(labels(service).get(UNHEALTHY_LABEL)) or str(service.get("image", "")).split("@")[0].endswith("-unhealthy")


def restart_policy(service: dict) -> str:
    policy = service.get("restart") if isinstance(service, dict) else None
    if policy is None and isinstance(service, dict):
        condition = ((service.get("deploy") or {}).get("restart_policy") or {}).get("condition")
        policy = {"any": "always", "on-failure": "on-failure", "none": "no"}.get(condition)
    return str(policy or "no").split(":")[0]


def _seconds(value, default: float) -> float:
    """A compose duration (`1s`, `500ms`, `1m30s`) in seconds."""
    if value is None:
        return default
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ms|us|ns|h|m|s)", str(value)):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    return total


def _loop_running(since: float, loop: float) -> bool:
    """Whether a crash-looping container runs `since` seconds after `up`: it runs for loop/4,
    then Docker waits before restarting it, the wait doubling each time (Docker's restart
    policies: "an ever increasing delay (double the previous delay, starting at 100
    milliseconds)"), here from loop/4 up to 8 x loop."""
    t, delay = 0.0, loop / 4
    while True:
        if since < t + loop / 4:
            return True
        t += loop / 4 + delay
        if since < t:
            return False
        delay = min(delay * 2, 8 * loop)


def _container_state(name: str, service: dict, since: float, loop: float) -> str:
    """The state TrueNAS reports for a service's container `since` seconds after `up`."""
    if crashes(name, service):
        if restart_policy(service) in LOOPING:
            return "running" if _loop_running(since, loop) else "exited"     # restarting -> exited
        return "crashed"
    check = service.get("healthcheck")
    if isinstance(check, dict) and not check.get("disable"):
        if unhealthy(service):
            return "starting"
        if since < _seconds(check.get("start_period"), 0) + _seconds(check.get("interval"), 30):
            return "starting"
    return "running"


def _unhealthy_dependency(app: str, config) -> str | None:
    """`up -d` waits for `depends_on: {X: {condition: service_healthy}}` and fails when X
    never gets healthy (docker compose: `dependency failed to start: container ... is unhealthy`)."""
    for service in services(config).values():
        deps = service.get("depends_on") if isinstance(service, dict) else None
        if not isinstance(deps, dict):
            continue
        for dep, spec in deps.items():
            target = services(config).get(dep)
            if (isinstance(spec, dict) and spec.get("condition") == "service_healthy" and isinstance(target, dict)
                    and unhealthy(target)):
                return f"dependency failed to start: container ix-{app}-{dep}-1 is unhealthy"
    return None


def up_failure(config, app: str = "app") -> str | None:
    """Why `docker compose up` would fail for this config, or None."""
    if not isinstance(config, dict):
        return "top-level object must be a mapping"
    if not services(config):
        return "no service selected" if "services" in config else "services must be a mapping"
    for name, service in services(config).items():
        if not isinstance(service, dict):
            return f"service {name!r} must be a mapping"
        if _true(labels(service).get(FAIL_UP_LABEL)):
            return f"Error response from daemon: failed to create task for container {name}: simulated failure"
        if "image" not in service:
            return f"service {name!r} has neither an image nor a build context specified: invalid compose project"
    return _unhealthy_dependency(app, config)


def _ports(service: dict) -> list[dict]:
    """`used_ports`-shaped entries for one service (published ports only)."""
    out = []
    for item in service.get("ports") or []:
        host_ip, published, target, proto = "0.0.0.0", None, None, "tcp"
        if isinstance(item, dict):
            target, published = item.get("target"), item.get("published")
            proto, host_ip = item.get("protocol", "tcp"), item.get("host_ip", "0.0.0.0")
        else:
            text = str(item)
            if "/" in text:
                text, proto = text.rsplit("/", 1)
            parts = text.rsplit(":", 2) if text.count(":") >= 1 else [text]
            if len(parts) == 3:
                host_ip, published, target = parts
            elif len(parts) == 2:
                published, target = parts
            else:
                target = parts[0]
        if published in (None, "") or "-" in str(published) or "-" in str(target):
            continue
        hosts = [{"host_port": int(published), "host_ip": host_ip}]
        if host_ip == "0.0.0.0":             # Docker publishes on both families
            hosts.append({"host_port": int(published), "host_ip": "::"})
        out.append({"container_port": int(target), "protocol": proto, "host_ports": hosts})
    return out


def _mounts(service: dict) -> list[dict]:
    out = []
    for item in service.get("volumes") or []:
        if isinstance(item, dict):
            source, dest = item.get("source", ""), item.get("target", "")
            mode = "ro" if item.get("read_only") else "rw"
            kind = item.get("type", "volume")
        else:
            parts = str(item).split(":")
            source, dest = parts[0], parts[1] if len(parts) > 1 else parts[0]
            mode = parts[2] if len(parts) > 2 else "rw"
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
        out.append({"source": source, "destination": dest, "mode": mode, "type": kind})
    return out


def containers(app: str, config, phase_state: str, since: float = 0.0, loop: float = 0.4) -> list[dict]:
    """`container_details`; phase_state is 'deploying', 'settled' or 'down'; `since`: seconds
    since the deployment settled."""
    if phase_state == "down":
        return []
    out = []
    for name, service in services(config).items():
        if not isinstance(service, dict):
            continue
        if phase_state == "deploying":
            state = "starting"
        else:
            state = _container_state(name, service, since, loop)
        cid = hashlib.sha256(f"{app}/{name}".encode()).hexdigest()
        out.append({"id": cid, "service_name": name, "image": str(service.get("image", "")),
                    "port_config": _ports(service), "state": state,
                    "volume_mounts": _mounts(service)})
    return out


def app_state(details: list[dict]) -> str:
    """The reference's rule (ix_apps/query.py) from container states."""
    states = [c["state"] for c in details]
    if any(s == "crashed" for s in states):
        return "CRASHED"
    if any(s in ("created", "starting") for s in states):
        return "DEPLOYING"
    if states and all(s in ("running", "exited") for s in states) and "running" in states:
        return "RUNNING"
    return "STOPPED"


def workloads(details: list[dict], with_networks: bool, app: str) -> dict:
    used = {}
    for c in details:
        for port in c["port_config"]:
            key = (port["container_port"], port["protocol"])
            used.setdefault(key, {"container_port": port["container_port"], "protocol": port["protocol"],
                                  "host_ports": []})["host_ports"].extend(port["host_ports"])
    out = {
        "containers": len(details),
        "used_ports": list(used.values()),
        "container_details": details,
        "volumes": [m for c in details for m in c["volume_mounts"]],
        "images": sorted({c["image"] for c in details}),
    }
    if with_networks:
        out["networks"] = [{"Name": f"ix-{app}_default"}] if details else []
    return out
