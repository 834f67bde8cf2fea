"""`network_mode:` of a service on Proxmox.

On a Docker host, `network_mode: host` puts the app on the host's own addresses: it is reachable on the
LAN at the host's address, and it reaches the file's other services only at `localhost:<published port>`
(it has no Docker DNS), while they reach it through `host.docker.internal` / `host-gateway`. On Proxmox
every service is its own CT on the host's bridge with its own address (composeNetwork or DHCP), so:

- alone in its file, or when no peer publishes a port and none reaches the host through the gateway, the
  service is on the LAN at its CT's address: accepted, with a note (its URLs use the CT's address);
- otherwise the file relies on the shared host stack (`localhost:8080` in a Caddyfile, the gateway in
  `extra_hosts`), which separate CTs cannot give: refused, naming the peers and the fix.

`service:<name>` / `container:<name>` (one network stack shared by two containers) cannot be made from
two CTs and is refused; `bridge`, `default` and `none`-less defaults need nothing.
"""

from __future__ import annotations

from .model import Service

GATEWAY_NAMES = ("host-gateway",)


def _published(service: Service) -> list:
    """Container ports a host-networked peer would reach at localhost (every published port, loopback too)."""
    return sorted({p.published or p.target for p in service.ports if p.published is not None})


def _reaches_gateway(service: Service) -> bool:
    value = service.options.get("extra_hosts")
    items = [str(v) for v in value.values()] if isinstance(value, dict) else \
        [str(v) for v in value] if isinstance(value, list) else []
    return any(any(name in item for name in GATEWAY_NAMES) for item in items)


def check(service: Service, services: dict, fail, warn) -> None:
    mode = service.options.get("network_mode")
    at = f"{service.where}.network_mode"
    if mode is None or mode in ("bridge", "default"):
        return
    if mode != "host":
        what = ("shares the network of another container" if str(mode).startswith(("service:", "container:"))
                else f"uses the network mode {mode!r}")
        fail(at, f"{what}, which a Proxmox CT cannot do",
             "Remove network_mode:; every service gets its own address and reaches the others by name")
        return
    peers = [s for name, s in services.items() if name != service.name]
    publishing = [(p.name, _published(p)) for p in peers if _published(p)]
    gateway = [p.name for p in peers if _reaches_gateway(p)]
    if not publishing and not gateway:
        warn(at, "is mapped: on Proxmox the service is its own CT with its own address on the host's bridge, "
             "reachable from the LAN there (not at the Proxmox host's address); its peers reach it by name")
        return
    reasons = []
    if publishing:
        shown = ", ".join(f"{name} ({', '.join(str(p) for p in ports)})" for name, ports in publishing)
        reasons.append(f"it reaches {shown} at localhost, where Docker publishes "
                       f"{'its port' + ('s' if len(publishing[0][1]) > 1 else '') if len(publishing) == 1 else 'their ports'}")
    if gateway:
        reasons.append(f"{', '.join(gateway)} reach{'es' if len(gateway) == 1 else ''} it through the host's "
                       "gateway (extra_hosts: host-gateway)")
    name, ports = (publishing[0][0], publishing[0][1]) if publishing else (gateway[0], [])
    target = f"{name}:{ports[0]}" if ports else f"{service.name} by its name"
    fail(at, "uses the host's network, and " + "; ".join(reasons) + ". On Proxmox each service is its own CT "
         "with its own address, so localhost and the gateway are not its peers",
         f"Remove network_mode: host and point {service.name if publishing else name} at {target} (services reach "
         "each other by name)")
