"""Addresses of simulated containers: a deterministic fake DHCP in 198.18.0.0/15.

A static `ip=` on net0 wins; `ip=dhcp` gets 198.18.X.Y derived from node name and vmid.
"""

from __future__ import annotations

import hashlib

from .conf import CTConfig
from .ct_schema import NET_DESC
from .schema import parse_property_string


def net_config(conf_values: dict[str, str], key: str = "net0") -> dict[str, str] | None:
    value = conf_values.get(key)
    if not value:
        return None
    try:
        return parse_property_string(NET_DESC, value)
    except Exception:
        return None


def dhcp_address(node: str, vmid: int, index: int = 0) -> str:
    seed = f"{node}/{vmid}" if index == 0 else f"{node}/{vmid}/net{index}"
    digest = hashlib.sha256(seed.encode()).digest()
    return f"198.18.{digest[0]}.{1 + digest[1] % 254}"


def ipv4_of(conf: CTConfig, node: str, key: str = "net0") -> tuple[str, int] | None:
    """-> (address, prefix length) or None."""
    net = net_config(conf.main.values, key)
    if not net:
        return None
    ip = net.get("ip")
    if ip == "dhcp":
        return dhcp_address(node, conf.vmid, int(key[3:] or 0)), 15
    if ip and "/" in ip:
        addr, prefix = ip.split("/", 1)
        return addr, int(prefix)
    return None


def link_local6(hwaddr: str) -> str:
    octets = [int(x, 16) for x in hwaddr.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    groups = [f"{(eui[i] << 8 | eui[i + 1]):x}" for i in range(0, 8, 2)]
    return "fe80::" + ":".join(groups)
