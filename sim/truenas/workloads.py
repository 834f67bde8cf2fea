"""What the fake Docker would run for a compose config: containers, ports, volumes, state.

Test hooks, per service (labels as a mapping or a `key=value` list):
* `homefleet.test/crash: "true"`, or an image whose name contains `crash`: the container
  exits non-zero once deployed, so the app becomes CRASHED;
* `homefleet.test/fail-up: "true"`: `docker compose up` fails, so the job fails with
  EFAULT `Failed 'up' action ...`.
"""

from __future__ import annotations

import hashlib

CRASH_LABEL = "homefleet.test/crash"
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


def up_failure(config) -> str | None:
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
    return None


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
        out.append({"container_port": int(target), "protocol": proto,
                    "host_ports": [{"host_port": int(published), "host_ip": host_ip}]})
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


def containers(app: str, config, phase_state: str) -> list[dict]:
    """`container_details`; phase_state is 'deploying', 'settled' or 'down'."""
    if phase_state == "down":
        return []
    out = []
    for name, service in services(config).items():
        if not isinstance(service, dict):
            continue
        if phase_state == "deploying":
            state = "starting"
        else:
            state = "crashed" if crashes(name, service) else "running"
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
