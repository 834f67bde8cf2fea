"""TrueNASApp's pure parts: the compose it sends, what it checks without the host, its outputs.

Kept apart from providers/truenas_app.py (the host calls and the provider) so the upgrade
sequence (providers/truenas_upgrade.py) uses them without an import circle.
"""

from typing import Optional

import yaml

from .hosts import midclt
from . import truenas_health


def _bool(value, default: bool) -> bool:
    return default if value is None else bool(value)


def desired_config(props: dict) -> dict:
    return midclt.with_marker(yaml.safe_load(props["compose"]), props["stack"], props["app"])


def compose_problems(text: str) -> list:
    """What makes a compose text unusable as a TrueNAS custom app (checked without the host)."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:      # no snippet of the text: it may hold a secret
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return [f"the compose is not valid YAML{where}: {getattr(exc, 'problem', None) or 'syntax error'}"]
    if not isinstance(config, dict):
        return ["the compose must be a mapping with a `services:` key"]
    services = config.get("services")
    if not isinstance(services, dict) or not services:
        return ["the compose needs a non-empty `services:` mapping"]
    problems = []
    if midclt.MARKER_KEY in config:
        problems.append(f"`{midclt.MARKER_KEY}` is homefleet's ownership marker; remove it from the compose")
    for name, service in services.items():
        if not isinstance(service, dict):
            problems.append(f"services.{name} must be a mapping")
            continue
        if "build" in service:
            problems.append(f"services.{name}.build: TrueNAS cannot build images; use a published image")
        if not service.get("image"):
            problems.append(f"services.{name}.image is required")
    return problems


def _urls(props: dict, published: list) -> list:
    hints = {int(p["port"]): p.get("scheme") for p in props.get("ports") or [] if p.get("port") is not None}
    address = props["host"]["address"]
    urls = []
    for port in published:
        if port["protocol"] != "tcp" or port["host_ip"].startswith("127."):
            continue
        if hints:
            scheme = hints.get(port["port"])
        else:
            scheme = "https" if port["port"] in (443, 8443) else "http"
        if scheme:
            url = f"{scheme}://{address}:{port['port']}"
            if url not in urls:
                urls.append(url)
    return urls


_NOT_INPUTS = {"state", "compose_digest", "truenas_version", "published", "urls", "drift", "images", "moved",
               "healthy", "previous"}


def _outputs(props: dict, entry: dict, config, version: tuple, images: Optional[dict] = None) -> dict:
    """`config`: the compose without homefleet's pins; `images`: {service: image@digest} sent."""
    published = midclt.published_ports(entry)
    return {
        **props,
        "state": entry.get("state"),
        "compose_digest": midclt.digest(config),
        "truenas_version": midclt.version_text(version),
        "published": published,
        "urls": _urls(props, published),
        "images": images or {},
        "moved": [],
        "healthy": truenas_health.healthy(entry, config),
        "previous": props.get("previous"),
    }


def running_change(olds: dict, news: dict) -> bool:
    state = olds.get("state")
    if _bool(news.get("running"), True):
        return state in ("STOPPED", "CRASHED")
    return state not in (None, "STOPPED")


def named_volumes(config) -> list:
    """Top-level named volumes that TrueNAS's `down -v` would delete with the app."""
    volumes = config.get("volumes") if isinstance(config, dict) else None
    if not isinstance(volumes, dict):
        return []
    return sorted(name for name, spec in volumes.items()
                  if not (isinstance(spec, dict) and spec.get("external")))


# ---------------------------------------------------------------- host calls


def drift_of(props: dict, config, state: Optional[str]) -> list:
    """What differs on the NAS from what homefleet applied, by compose key, as the user wrote it."""
    out = []
    if isinstance(config, dict) and isinstance(props.get("compose"), str):
        if midclt.digest(config) != props.get("compose_digest"):
            keys = midclt.changed_paths(desired_config(props), config)
            out.append("compose changed: " + (", ".join(keys[:8]) + (" ..." if len(keys) > 8 else "")
                                              if keys else "(formatting)"))
    want = _bool(props.get("running"), True)
    if state and running_change({"state": state}, {"running": want}):
        out.append(f"running: the app is {state} on the NAS, the stack wants it "
                   + ("running" if want else "stopped"))
    return out
