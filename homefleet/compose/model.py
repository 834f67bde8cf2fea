"""A compose file as homefleet reads it: host-independent `ComposeFile` of `Service`s."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

@dataclass
class Mount:
    """One `volumes:` entry of a service."""

    type: str  # volume | bind | tmpfs
    source: Optional[str]  # volume name, host path as written, or None (anonymous volume, tmpfs)
    target: str
    read_only: bool = False
    where: str = ""
    options: dict = field(default_factory=dict)  # long-syntax extras and short-syntax modes (z, nocopy...)

    @property
    def relative(self) -> bool:
        return self.type == "bind" and not (self.source or "").startswith("/")


@dataclass
class PortSpec:
    target: int
    published: Optional[int] = None
    protocol: str = "tcp"
    host_ip: Optional[str] = None
    app_protocol: Optional[str] = None
    name: Optional[str] = None
    where: str = ""


@dataclass
class DeviceSpec:
    source: str
    target: str
    permissions: str = "rwm"
    where: str = ""


@dataclass
class Dependency:
    service: str
    condition: str = "service_started"
    required: bool = True
    restart: bool = False


@dataclass
class Service:
    name: str
    image: str
    where: str
    environment: dict = field(default_factory=dict)  # name -> str | SecretText
    command: Optional[list] = None
    entrypoint: Optional[list] = None
    volumes: list = field(default_factory=list)
    ports: list = field(default_factory=list)
    devices: list = field(default_factory=list)
    depends_on: dict = field(default_factory=dict)  # service name -> Dependency
    healthcheck: Optional[dict] = None
    restart: Optional[str] = None
    networks: dict = field(default_factory=dict)  # network name -> {aliases: [...], ipv4_address: ...}
    hostname: Optional[str] = None
    container_name: Optional[str] = None
    user: Optional[str] = None
    working_dir: Optional[str] = None
    extensions: dict = field(default_factory=dict)  # x-* keys
    options: dict = field(default_factory=dict)  # every other Compose key, interpolated


@dataclass
class ComposeFile:
    path: Path
    display: str
    name: Optional[str]
    services: dict
    volumes: dict  # name -> {driver, driver_opts, external, x-...} (None -> {})
    networks: dict
    extensions: dict
    top_level: dict  # secrets, configs, models: kept for the host kinds to refuse or use
    secrets: tuple = ()  # secret variables the file uses
    warnings: list = field(default_factory=list)


def start_order(services: dict) -> list:
    """Service names, every service after the ones it depends on (ties by name)."""
    done: list = []
    remaining = dict(services)
    while remaining:
        ready = sorted(n for n, s in remaining.items() if all(d in done for d in s.depends_on))
        if not ready:  # a cycle; load_compose refuses those
            raise ValueError("depends_on cycle")
        done += ready
        for name in ready:
            del remaining[name]
    return done


def find_cycle(graph: dict) -> Optional[list]:
    state: dict = {}
    stack: list = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
