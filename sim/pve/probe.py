"""What a simulated CT answers on the network: the host-side `curl` (sim/pve/curl.py) and
`curl`/`wget` run inside the CT with `pct exec` (sim/pve/pct_exec.py) ask here.

Simulated CT addresses (198.18.0.0/15, sim/pve/netinfo.py) are not routable on the machine.
A CT answers only while it runs (runstate: an entrypoint that exited has stopped it); its
process listens on the image's `listen` ports (entrypoint.json, sim/images.py), else on its
ExposedPorts. Every listening port speaks HTTP: `GET /` answers `<image> <version>` (the
test-app: `test-app <APP_VERSION>`), `GET /health` 200 `ok`, other paths 404; the image's
`http` ({path: status}) overrides a path's status (an unhealthy image: `/health` 500).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from . import appstart, netinfo, paths, runstate
from . import conf as conf_mod

SIM_NET = ipaddress.ip_network("198.18.0.0/15")
REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class Answer:
    kind: str                   # "http", "refused" (nothing listens), "unreachable" (no such CT up)
    status: int = 0
    body: str = ""


def simulated(host: str) -> bool:
    try:
        return ipaddress.ip_address(host) in SIM_NET
    except ValueError:
        return False


def ct_at(address: str):
    """The CT config whose net0..net9 has `address` on this node, or None."""
    node = paths.node_name()
    for vmid in conf_mod.list_vmids():
        try:
            conf = conf_mod.load(vmid)
        except Exception:
            continue
        for index in range(10):
            found = netinfo.ipv4_of(conf, node, f"net{index}")
            if found and found[0] == address:
                return conf
    return None


def listening(conf, behaviour: dict, env: dict) -> set[int]:
    items = behaviour.get("listen")
    if items:
        return {int(env.get(i.get("env") or "") or i["port"]) for i in items}
    return {int(p) for p in behaviour.get("exposed", [])}


def env_of(conf) -> dict:
    return dict(e.split("=", 1) for e in (conf.get("env") or "").split("\0") if "=" in e)


def answer(conf, port: int, path: str) -> Answer:
    """What `GET path` on `port` of the CT gets."""
    if conf is None or not runstate.is_running(conf.vmid):
        return Answer("unreachable")
    behaviour = appstart.read_behaviour(conf) or {}
    env = env_of(conf)
    if port not in listening(conf, behaviour, env):
        return Answer("refused")
    path = "/" + path.split("?", 1)[0].lstrip("/")
    name, version = behaviour.get("image", "app"), behaviour.get("version", "")
    if name == "test-app" and env.get("APP_VERSION"):
        version = env["APP_VERSION"]
    bodies = {"/": f"{name} {version}".strip() + "\n", "/health": "ok\n"}
    status = int((behaviour.get("http") or {}).get(path, 200 if path in bodies else 404))
    if status >= 400:
        body = {404: "404 page not found\n"}.get(status, f"{status} {REASONS.get(status, 'Error')}\n")
    else:
        body = bodies.get(path, "")
    return Answer("http", status, body)
