"""A naive baseline: what earlier tools do with the same fleet.

- a new SSH connection (handshake + auth) for every command;
- `pct create` with the basic options, then one `pct set` per mount point, per device and
  per env variable, then `pct start`, then `pct config` + `pct status` to read it back;
- a vmid from `pvesh get /cluster/nextid` per CT;
- every run reads every CT (`pct config` + `pct status`) and template (`test -s`) first,
  as a plan/refresh would, then changes only what differs;
- one command at a time per host; the hosts are worked on in parallel (one thread each).

It deploys the CT options homefleet's own model computes (`homefleet.plan` +
`pct.spec_options`), so both tools build the same containers. Run as
`python -m bench.baseline SCENARIO --plan FILE --state FILE`; it prints one JSON line with
its own peak memory.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry

from providers.hosts import pct
from providers.transport.quoting import describe, to_command_line

TEMPLATE_DIR = "/var/lib/vz/template/cache"
_SEPARATE = re.compile(r"^(mp|dev)\d+$")
# The baseline's CTs carry no homefleet tag or marker: to homefleet they are someone else's.
FOREIGN = {"tags": "bench-baseline", "description": "deployed by bench/baseline.py"}


# ---------------------------------------------------------------- the plan (parent side)

def make_plan(hosts: dict, apps: dict, hosts_json: list) -> dict:
    """Hosts, templates and CTs for the baseline, from the same stack homefleet deploys."""
    from homefleet.config import load
    from homefleet.plan import make_plan as homefleet_plan
    from sim.engine import REPO

    stack, catalog = load("baseline", {"hosts": hosts, "apps": apps}, project_dir=str(REPO))
    plan = homefleet_plan("baseline", stack, catalog)
    templates = {}
    for name, tp in plan.templates.items():
        archive = re.sub(r"[^a-z0-9.-]+", "_", tp.props["image"].lower()) + ".tar"
        templates[name] = {"host": tp.host, "pull_ref": tp.props["pull_ref"], "archive": archive,
                           "volid": f"local:vztmpl/{archive}"}
    cts = []
    for ct in plan.cts:
        spec = {**ct.props, "template": templates[ct.template]["volid"]}
        options = {**pct.spec_options(spec), **FOREIGN}
        cts.append({
            "host": ct.host, "app": ct.app, "template": spec["template"],
            "create": {k: v for k, v in options.items() if not _SEPARATE.match(k)},
            "separate": {k: v for k, v in options.items() if _SEPARATE.match(k)},
            "env": spec.get("env") or {},
        })
    by_name = {h["name"]: h for h in hosts_json}
    return {"hosts": [by_name[name] for name in hosts], "templates": list(templates.values()), "cts": cts}


# ---------------------------------------------------------------- the tool

class NaiveHost:
    """One host; every `run` opens its own SSH connection."""

    def __init__(self, host: dict):
        self.host = host
        self.name = host["name"]
        self.commands = 0

    def _connect(self) -> paramiko.SSHClient:
        h = self.host
        known = h["address"] if h["port"] == 22 else f"[{h['address']}]:{h['port']}"
        entry = HostKeyEntry.from_line(f"{known} {h['host_key']}")
        client = paramiko.SSHClient()
        client.get_host_keys().add(known, entry.key.get_name(), entry.key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        sock = socket.create_connection((h["address"], h["port"]), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.connect(h["address"], port=h["port"], username=h["user"], sock=sock,
                       pkey=paramiko.Ed25519Key.from_private_key_file(h["client_key"]),
                       allow_agent=False, look_for_keys=False, timeout=30)
        return client

    def run(self, argv: list, check: bool = True) -> tuple:
        client = self._connect()
        try:
            _, stdout, stderr = client.exec_command(to_command_line(argv), timeout=1800)
            out = stdout.read().decode(errors="replace")
            err = stderr.read().decode(errors="replace")
            rc = stdout.channel.recv_exit_status()
        finally:
            client.close()
        self.commands += 1
        if check and rc != 0:
            raise RuntimeError(f"baseline {self.name}: '{describe(argv)}' exited {rc}: {err.strip()[-500:]}")
        return rc, out


def _read_ct(host: NaiveHost, vmid: int) -> dict:
    _, config = host.run(["pct", "config", str(vmid)])
    host.run(["pct", "status", str(vmid)])
    return pct.parse_config(config)


def _read_all(host: NaiveHost, plan: dict, state: dict) -> tuple:
    """({archive: present}, {app: config}) for this host's templates and CTs."""
    present = {tp["archive"]: host.run(["test", "-s", f"{TEMPLATE_DIR}/{tp['archive']}"], check=False)[0] == 0
               for tp in _mine(plan["templates"], host)}
    configs = {ct["app"]: _read_ct(host, state[ct["app"]]) for ct in _mine(plan["cts"], host) if ct["app"] in state}
    return present, configs


def _mine(items: list, host: NaiveHost) -> list:
    return [item for item in items if item["host"] == host.name]


def up(host: NaiveHost, plan: dict, state: dict, changes: dict) -> None:
    present, current = _read_all(host, plan, state)
    for tp in _mine(plan["templates"], host):
        if not present[tp["archive"]]:
            path = f"{TEMPLATE_DIR}/{tp['archive']}"
            host.run(["skopeo", "copy", "--quiet", f"docker://{tp['pull_ref']}", f"oci-archive:{path}"])
    for ct in _mine(plan["cts"], host):
        app = ct["app"]
        if app in state:
            want = changes.get(app)
            if want and current[app].get("memory") != str(want):
                host.run(["pct", "set", str(state[app]), "--memory", str(want)])
            continue
        _, out = host.run(["pvesh", "get", "/cluster/nextid"])
        vmid = int(out.strip())
        host.run(pct.create_argv(vmid, ct["template"], ct["create"]))
        state[app] = vmid
        for key, value in ct["separate"].items():
            host.run(["pct", "set", str(vmid), f"--{key}", value])
        for key, value in ct["env"].items():
            host.run(["pct", "set", str(vmid), "--env", f"{key}={value}"])
        host.run(["pct", "start", str(vmid)])
        _read_ct(host, vmid)


def refresh(host: NaiveHost, plan: dict, state: dict, changes: dict) -> None:
    _read_all(host, plan, state)


def destroy(host: NaiveHost, plan: dict, state: dict, changes: dict) -> None:
    _read_all(host, plan, state)
    for ct in _mine(plan["cts"], host):
        vmid = state.pop(ct["app"], None)
        if vmid is None:
            continue
        host.run(["pct", "shutdown", str(vmid), "--timeout", "60", "--forceStop", "1"])
        host.run(["pct", "destroy", str(vmid), "--purge", "1"])
    for tp in _mine(plan["templates"], host):
        host.run(["rm", "-f", f"{TEMPLATE_DIR}/{tp['archive']}"])


SCENARIOS = {"up": up, "noop": up, "update": up, "refresh": refresh, "destroy": destroy}


def run_scenario(scenario: str, plan: dict, state: dict, changes: dict) -> dict:
    hosts = [NaiveHost(h) for h in plan["hosts"]]
    states = {h.name: {ct["app"]: state[ct["app"]] for ct in _mine(plan["cts"], h) if ct["app"] in state}
              for h in hosts}
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        futures = [pool.submit(SCENARIOS[scenario], h, plan, states[h.name], changes) for h in hosts]
        for future in futures:
            future.result()
    merged = {}
    for host_state in states.values():
        merged.update(host_state)
    return merged


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--memory", action="append", default=[], metavar="APP=MB",
                        help="the memory an app should have (the one-app update)")
    args = parser.parse_args(argv)
    plan = json.loads(args.plan.read_text())
    state = json.loads(args.state.read_text()) if args.state.exists() else {}
    changes = {k: int(v) for k, v in (item.split("=", 1) for item in args.memory)}
    state = run_scenario(args.scenario, plan, state, changes)
    args.state.write_text(json.dumps(state))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mb": round(peak_kb / 1024, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
