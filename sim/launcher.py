"""`sim up` / `sim down`: start and stop a fleet of simulated hosts and the registry.

`DIR/hosts.json` is the public description (docs/dev/simulator.md); `DIR/run.json`
is the launcher's own record of what it started (pids with their start times,
so `down` never signals a process that merely reuses a pid).

`up` on a DIR whose processes still run fails with AlreadyUp. `up` on a DIR that
was brought down (or whose processes died) starts again and keeps the host keys,
the client key and every host's state.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sim import client, hoststate, images, procs, registry, sshd
from sim.truenas.paths import set_version as set_truenas_version

REPO_ROOT = Path(__file__).resolve().parent.parent
PVE_TOOLS = ["pct", "pvesm", "pvesh", "pveversion", "lxc-info", "pveam", "pveum", "curl", "vzdump"]
READY_TIMEOUT = 20.0


class AlreadyUp(RuntimeError):
    pass


# ---------------------------------------------------------------- files

def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_shims(bin_dir: Path, with_truenas: bool) -> None:
    """DIR/bin: the fake host tools, each a tiny sh script running the venv's python."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shims = {tool: ("sim.pve", tool) for tool in PVE_TOOLS}
    shims["stat"] = ("sim.localized", "stat")  # coreutils' messages in the host's language
    if with_truenas:
        shims["midclt"] = ("sim.truenas", "midclt")
        shims["sudo"] = ("sim.truenas", "sudo")
        shims["python3"] = ("sim.truenas", "python3")
    for tool, (module, name) in shims.items():
        path = bin_dir / tool
        path.write_text("#!/bin/sh\n"
                        f"PYTHONPATH={shlex.quote(str(REPO_ROOT))}\n"
                        "export PYTHONPATH\n"
                        f"exec {shlex.quote(sys.executable)} -m {module} {name} \"$@\"\n")
        path.chmod(0o755)


def host_names(hosts: int, truenas: int) -> list[tuple[str, str]]:
    return ([(f"pve{i}", "proxmox") for i in range(1, hosts + 1)]
            + [(f"nas{i}", "truenas") for i in range(1, truenas + 1)])


# ---------------------------------------------------------------- liveness

def _recorded(sim_dir: Path) -> list[tuple[int, int | None]]:
    """(pid, start time) of every process run.json says this DIR started."""
    run = _read_json(sim_dir / "run.json") or {}
    found = []
    for key in ("registry", "proxy"):
        if run.get(key):
            found.append((run[key]["pid"], run[key]["started"]))
    for host in run.get("hosts", []):
        found.append((host["pid"], host["started"]))
        found.append((host["unshare_pid"], host["unshare_started"]))
    return found


def _from_hosts_json(sim_dir: Path) -> list[tuple[int, int | None]]:
    """Without run.json, trust a hosts.json pid only if its command line names this DIR."""
    data = _read_json(sim_dir / "hosts.json") or {}
    pids = [h.get("pid") for h in data.get("hosts", [])]
    pids.append((data.get("registry") or {}).get("pid"))
    return [(pid, None) for pid in pids
            if isinstance(pid, int) and str(sim_dir) in " ".join(procs.cmdline(pid))]


def running_pids(sim_dir: Path) -> list[int]:
    sim_dir = Path(sim_dir).resolve()
    recorded = _recorded(sim_dir) or _from_hosts_json(sim_dir)
    return [pid for pid, started in recorded if procs.same_process(pid, started)]


def is_up(sim_dir: Path) -> bool:
    return bool(running_pids(sim_dir))


# ---------------------------------------------------------------- up / down

def up(sim_dir: Path, hosts: int = 1, truenas: int = 0, latency_ms: float = 0,
       truenas_version: str | None = None) -> dict:
    """Start the fleet; returns what it wrote to DIR/hosts.json.

    `truenas_version`: e.g. "24.10" or "24.10,25.04" (one per TrueNAS host, the last one
    repeating); written to each TrueNAS host's `truenas_version` file. None keeps the file.
    """
    sim_dir = Path(sim_dir).resolve()
    sim_dir.mkdir(parents=True, exist_ok=True)
    if is_up(sim_dir):
        raise AlreadyUp(f"{sim_dir} is already up; run `python -m sim down --dir {sim_dir}` first")
    down(sim_dir)                       # leftovers of a failed or interrupted run
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)    # sshd's privilege separation dir

    names = host_names(hosts, truenas)
    client_key = sim_dir / "client_ed25519"
    client_pub = sshd.keygen(client_key, "homefleet-sim-client")
    write_shims(sim_dir / "bin", with_truenas=truenas > 0)
    for kind in {kind for _, kind in names}:
        hoststate.ensure_mount_points(kind)

    run: dict = {"registry": None, "hosts": []}
    try:
        reg = registry.start(sim_dir)
        run["registry"] = {"pid": reg.pid, "started": reg.started, "address": reg.address}
        _write_json(sim_dir / "run.json", run)
        proxy = registry.start_proxy(sim_dir, reg.address)
        run["proxy"] = {"pid": proxy.pid, "started": proxy.started, "address": proxy.address}
        _write_json(sim_dir / "run.json", run)

        specs = registry.seed_specs()
        domains = sorted({images.split_ref(s.ref)[0] for s in specs})
        entries = []
        for name, kind in names:
            state = sim_dir / name
            hoststate.prepare(state, name, kind, reg.address, proxy.address, latency_ms, domains)
            if kind == "truenas" and truenas_version:
                versions = truenas_version.split(",")
                index = int(name[len("nas"):]) - 1
                set_truenas_version(state, versions[min(index, len(versions) - 1)])
            host_key = sshd.keygen(state / "ssh" / "ssh_host_ed25519_key", f"root@{name}")
            daemon = sshd.start(state, name, kind, sim_dir / "bin", client_pub)
            run["hosts"].append({"name": name, "pid": daemon.pid, "started": daemon.started,
                                 "unshare_pid": daemon.unshare_pid,
                                 "unshare_started": daemon.unshare_started})
            _write_json(sim_dir / "run.json", run)
            entries.append({"name": name, "kind": kind, "address": "127.0.0.1",
                            "port": daemon.port, "user": "root", "host_key": host_key,
                            "client_key": str(client_key), "state": str(state),
                            "pid": daemon.pid})

        registry.seed(reg.address, specs)
        _wait_ready(entries)
        result = {"hosts": entries,
                  "registry": {"address": reg.address, "pid": reg.pid},
                  "client_key": str(client_key)}
        _write_json(sim_dir / "hosts.json", result)
        return result
    except BaseException:
        down(sim_dir)
        raise


def _wait_ready(entries: list[dict]) -> None:
    """Every sshd completes an SSH handshake and accepts the client key."""
    def check(entry: dict) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                client.connect(entry["address"], entry["port"], entry["host_key"],
                               entry["client_key"], timeout=5).close()
                return
            except Exception as exc:        # noqa: BLE001 - any failure means "not yet"
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{entry['name']}: sshd not ready: {exc!r}") from exc
                time.sleep(0.05)

    with ThreadPoolExecutor(max_workers=max(1, len(entries))) as pool:
        list(pool.map(check, entries))


def down(sim_dir: Path) -> None:
    """Stop every process this DIR started and wait for them (and their sessions) to exit."""
    sim_dir = Path(sim_dir).resolve()
    procs.stop(running_pids(sim_dir))
    for name in ("hosts.json", "run.json"):
        (sim_dir / name).unlink(missing_ok=True)
