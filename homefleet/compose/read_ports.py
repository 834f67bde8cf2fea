"""Rules for `ports:` and `devices:` of a service."""

from __future__ import annotations

import re
from typing import Optional

from .model import DeviceSpec, PortSpec
from .values import MAX_PORT_RANGE, PORT, port_range


class PortRules:
    # ---- ports, devices

    def _ports(self, where: str, value) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(f"{where}.ports", "must be a list", 'Write e.g. ports: ["8080:80"]')
            return []
        out = []
        for index, item in enumerate(value):
            at = f"{where}.ports[{index}]"
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if isinstance(item, str):
                out += self._short_port(at, item)
            elif isinstance(item, dict):
                port = self._long_port(at, item)
                if port:
                    out.append(port)
            else:
                self.fail(at, f"must be a string or a mapping (got {item!r})", 'Write e.g. "8080:80"')
        return out

    def _short_port(self, at: str, text: str) -> list:
        if text.startswith(":") and text.count(":") == 2:  # an empty host IP (`${IP:-}:8080:80`): all addresses
            text = text[1:]
        match = PORT.match(text)
        if not match:
            self.fail(at, f"{text!r} is not [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]",
                      'Write e.g. "8080:80" or "53:53/udp"')
            return []
        targets = port_range(match.group("target"))
        published = port_range(match.group("pub")) if match.group("pub") else None
        if targets is None or (match.group("pub") and published is None):
            self.fail(at, f"{text!r}: a port is from 1 to 65535 and a range runs low-high, "
                      f"at most {MAX_PORT_RANGE} ports")
            return []
        if published is not None and len(published) not in (1, len(targets)):
            self.fail(at, f"{text!r}: the host and container ranges differ in length", "Give ranges of equal length")
            return []
        ip = match.group("ip")
        ip = ip.strip("[]") if ip else None
        out = []
        for i, target in enumerate(targets):
            pub = None if published is None else published[i] if len(published) > 1 else published[0]
            out.append(PortSpec(target, pub, match.group("proto") or "tcp", ip, where=at))
        return out

    def _long_port(self, at: str, item: dict) -> Optional[PortSpec]:
        allowed = {"target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"}
        for key in item:
            if key not in allowed and not str(key).startswith("x-"):
                self.fail(f"{at}.{key}", "unknown key", "allowed: " + ", ".join(sorted(allowed)))
        target = item.get("target")
        if not isinstance(target, int) or not 1 <= target <= 65535:
            self.fail(f"{at}.target", f"must be a port from 1 to 65535 (got {target!r})")
            return None
        published = item.get("published")
        if published is not None:
            try:
                published = int(published)
            except (TypeError, ValueError):
                self.fail(f"{at}.published", f"must be one port number (got {published!r})")
                return None
        protocol = item.get("protocol", "tcp")
        if protocol not in ("tcp", "udp", "sctp"):
            self.fail(f"{at}.protocol", f"must be tcp or udp (got {protocol!r})")
            return None
        return PortSpec(target, published, protocol, item.get("host_ip"), item.get("app_protocol"), item.get("name"),
                        where=at)

    def _devices(self, where: str, value) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(f"{where}.devices", "must be a list", 'Write e.g. devices: ["/dev/ttyUSB0:/dev/ttyUSB0"]')
            return []
        out = []
        for index, item in enumerate(value):
            at = f"{where}.devices[{index}]"
            if isinstance(item, str):
                parts = item.split(":")
                if len(parts) > 3 or not parts[0]:
                    self.fail(at, f"{item!r} is not HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]]")
                    continue
                source = parts[0]
                target = parts[1] if len(parts) > 1 and parts[1] else source
                perms = parts[2] if len(parts) > 2 else "rwm"
            elif isinstance(item, dict):
                source, target, perms = item.get("source"), item.get("target") or item.get("source"), \
                    item.get("permissions", "rwm")
            else:
                self.fail(at, f"must be a string or a mapping (got {item!r})")
                continue
            if not isinstance(source, str) or not source.startswith("/dev/"):
                self.fail(at, f"the host device {source!r} must be a path under /dev/", "Write e.g. /dev/ttyUSB0")
                continue
            if not isinstance(perms, str) or not re.fullmatch(r"[rwm]{1,3}", perms):
                self.fail(at, f"permissions must be letters of rwm (got {perms!r})")
                continue
            out.append(DeviceSpec(source, target, perms, at))
        return out
