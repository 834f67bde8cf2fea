"""Static addresses for compose services on a Proxmox host, from the host's `composeNetwork`.

Each service gets a deterministic address: a hash of `<app>/<service>` picks a slot in the
pool, so the same service keeps its address across runs and machines without any state.
Two services hashing to one slot: the one whose name sorts later takes the next free slot
(and the plan says so, with the fix to pin it). `x-homefleet: {ip: ...}` pins an address.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class Allocation:
    addresses: dict = field(default_factory=dict)  # (app, service) -> "a.b.c.d"
    warnings: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # (app, service, message, fix)


def pool(cidr: str, gateway: Optional[str], first: Optional[str] = None, last: Optional[str] = None) -> list:
    """The addresses homefleet may give out: the range (default: the whole subnet) minus network,
    broadcast and gateway, in order."""
    net = ipaddress.ip_network(cidr, strict=False)
    low = ipaddress.ip_address(first) if first else net.network_address + 1
    high = ipaddress.ip_address(last) if last else net.broadcast_address - 1
    skip = {net.network_address, net.broadcast_address}
    if gateway:
        skip.add(ipaddress.ip_address(gateway))
    out = []
    current = low
    while current <= high:
        if current not in skip:
            out.append(current)
        current += 1
    return out


def slot(app: str, service: str, size: int) -> int:
    digest = hashlib.sha256(f"{app}/{service}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % size


def allocate(addresses: list, wanted: list) -> Allocation:
    """`wanted`: (app, service, pinned address or None) -> an Allocation.

    Pinned addresses are taken first; then every other service, in (app, service) order,
    takes its hashed slot or the next free one.
    """
    result = Allocation()
    index = {str(a): i for i, a in enumerate(addresses)}
    taken: dict = {}
    for app, service, pinned in sorted(w for w in wanted if w[2]):
        if pinned not in index:
            result.problems.append((app, service,
                                    f"the pinned address {pinned} is not in the host's composeNetwork pool",
                                    "Pick an address inside composeNetwork (cidr/range), other than the gateway"))
            continue
        if pinned in taken:
            other = taken[pinned]
            result.problems.append((app, service,
                                    f"the pinned address {pinned} is also pinned by {other[0]}.{other[1]}",
                                    "Give each service its own address"))
            continue
        taken[pinned] = (app, service)
        result.addresses[(app, service)] = pinned
    size = len(addresses)
    for app, service, _ in sorted(w for w in wanted if not w[2]):
        if len(taken) >= size:
            result.problems.append((app, service, f"the host's composeNetwork pool ({size} addresses) is full",
                                    "Make composeNetwork's range larger"))
            continue
        start = slot(app, service, size)
        position = start
        while str(addresses[position]) in taken:
            position = (position + 1) % size
        address = str(addresses[position])
        if position != start:
            other = taken[str(addresses[start])]
            result.warnings.append((app, service,
                                    f"its address slot {addresses[start]} is used by {other[0]}.{other[1]}; "
                                    f"it gets {address}, which can change if services are added",
                                    f"Pin it: x-homefleet: {{ip: {address}}} on the service"))
        taken[address] = (app, service)
        result.addresses[(app, service)] = address
    return result
