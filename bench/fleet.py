"""The benchmark's fleet: simulated PVE hosts whose `pct create` takes as long as unpacking a
real image, app images of a realistic size in the local registry, and the stack (H hosts x A
apps) both tools deploy. The link's latency is bench/latency.py's."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sim import launcher, registry
from sim.testing import SimFleet

IMAGE = "ghcr.io/homefleet-bench/app{index}:1"
PAYLOAD = "/opt/bench/payload.b64"


@dataclass(frozen=True)
class Size:
    hosts: int = 2
    apps: int = 3             # per host
    latency_ms: float = 30    # round-trip time of the link to each host (bench/latency.py)
    create_ms: float = 1500   # added to every `pct create` (unpacking the image)
    image_mb: float = 16      # payload per app image (base64 text, ~12 MB gzipped)

    @property
    def cts(self) -> int:
        return self.hosts * self.apps


def host_names(size: Size) -> list[str]:
    return [f"pve{i + 1}" for i in range(size.hosts)]


def image_of(app_index: int) -> str:
    return IMAGE.format(index=app_index + 1)


def app_name(host: str, app_index: int) -> str:
    return f"{host}-app{app_index + 1}"


def apps(size: Size, memory: dict | None = None) -> dict:
    """`homefleet:apps`: app j on every host runs image j, with a volume, a bind mount, a
    device and an env variable (what a media server has); `memory` overrides per app."""
    out = {}
    for host in host_names(size):
        for index in range(size.apps):
            name = app_name(host, index)
            out[name] = {
                "host": host,
                "image": image_of(index),
                "memory": (memory or {}).get(name, 256),
                "disk": 1,
                "volumes": [{"path": "/data", "size": 1}],
                "mounts": ["/srv/media:/media:ro"],
                "devices": ["/dev/net/tun"],
                "env": {"TZ": "Etc/UTC"},
                "deleteData": True,
            }
    return out


def _payload(index: int, megabytes: float) -> str:
    """Incompressible-ish, deterministic text: base64 of a SHAKE stream."""
    raw = hashlib.shake_256(f"homefleet-bench-{index}".encode()).digest(int(megabytes * 1024 * 1024 * 3 / 4))
    return base64.encodebytes(raw).decode()


def start(sim_dir: Path, size: Size) -> SimFleet:
    """`sim up`, then the create delay and the images; `stop` undoes it. The latency is not
    the simulator's per-command sleep but a proxy on the way (bench/latency.py)."""
    launcher.up(sim_dir, hosts=size.hosts)
    try:
        fleet = SimFleet.load(sim_dir)
        for host in fleet.hosts:
            (host.state / "create_delay_ms").write_text(f"{size.create_ms:g}\n")
        for index in range(size.apps):
            files = {PAYLOAD: _payload(index, size.image_mb)} if size.image_mb > 0 else None
            registry.push_image(sim_dir, image_of(index), files=files)
        return fleet
    except BaseException:
        launcher.down(sim_dir)
        raise


def stop(sim_dir: Path) -> None:
    launcher.down(sim_dir)


def reachable_hosts(sim: SimFleet, ports: dict) -> list:
    """hosts.json's entries, with the port of each host's latency proxy where there is one."""
    hosts = json.loads(sim.hosts_json.read_text())["hosts"]
    return [{**h, "port": ports.get(h["name"], h["port"])} for h in hosts]


def host_cts(fleet: SimFleet) -> dict:
    """{host: {vmid: running}} straight from each host's state folder (no SSH, no log line)."""
    out = {}
    for host in fleet.hosts:
        conf_dir = host.state / "etc-pve" / "nodes" / host.name / "lxc"
        run_dir = host.state / "sim" / "run"
        out[host.name] = {int(p.stem): (run_dir / f"{p.stem}.json").exists() for p in conf_dir.glob("*.conf")}
    return out
