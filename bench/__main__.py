"""`python -m bench`: deploy H hosts x A apps through homefleet, a naive baseline and an Ansible
playbook, on the same simulated fleet, and run the engine's floor (a do-nothing program with as
many resources) beside them; print one JSON line per scenario with every tool's figures, the
ratios homefleet / baseline and homefleet / Ansible, and homefleet's overhead over the floor.
Progress goes to stderr. `--plot` sweeps sizes instead (bench/sweep.py)."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from . import fleet as bench_fleet, sweep
from .ansible_side import AnsibleRunner
from .baseline_side import BaselineRunner
from .floor_side import FloorRunner
from .homefleet_side import HomefleetRunner
from .latency import LatencyProxy

SCENARIOS = ("up", "noop", "refresh", "update", "destroy")
RATIOS = ("wall_s", "cpu_s", "ssh_connections", "commands", "peak_rss_mb")
TOOLS = ("homefleet", "floor", "baseline", "ansible")
DEPLOYS = ("homefleet", "baseline", "ansible")   # the tools that put CTs on the hosts


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _check_hosts(sim, size: bench_fleet.Size, tools: list, scenario: str) -> None:
    """After `up` every host runs A CTs per tool; after `destroy` none is left."""
    want = 0 if scenario == "destroy" else size.apps * len([t for t in tools if t in DEPLOYS])
    for host, found in bench_fleet.host_cts(sim).items():
        if len(found) != want or not all(found.values()):
            raise SystemExit(f"bench: after {scenario}, {host} has {found} (vmid: running); "
                             f"want {want} running CTs")


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return round(a / b, 3)


def _merge(runs: list) -> dict:
    """One tool's figures over the repetitions: median times, the largest peak memory, the
    counts of the first run (they do not vary)."""
    out = {k: v for k, v in runs[0].items() if not k.startswith("_")}
    for key in ("wall_s", "cpu_s"):
        out[key] = round(statistics.median(r[key] for r in runs), 2)
        if len(runs) > 1:
            out[key + "_runs"] = [r[key] for r in runs]
    out["peak_rss_mb"] = max((r["peak_rss_mb"] for r in runs if r.get("peak_rss_mb") is not None), default=None)
    return out


def overhead(tool: dict, floor: dict) -> dict:
    """What `tool` spends over the engine's floor, in seconds and CPU-seconds."""
    return {k: round(tool[k] - floor[k], 2) for k in ("wall_s", "cpu_s")}


def line(scenario: str, size: bench_fleet.Size, results: dict) -> dict:
    out = {"scenario": scenario, "hosts": size.hosts, "apps_per_host": size.apps, "cts": size.cts,
           "latency_ms": size.latency_ms, "create_ms": size.create_ms, "image_mb": size.image_mb}
    merged = {tool: _merge(runs) for tool, runs in results.items()}
    out.update(merged)
    hf = merged.get("homefleet")
    if hf and "baseline" in merged:
        out["ratio"] = {k: ratio(hf.get(k), merged["baseline"].get(k)) for k in RATIOS}
    if hf and "ansible" in merged:
        out["ratio_ansible"] = {k: ratio(hf.get(k), merged["ansible"].get(k)) for k in RATIOS}
    if hf and "floor" in merged:
        out["overhead"] = overhead(hf, merged["floor"])
    return out


def run(size: bench_fleet.Size, workdir: Path, tools: list, env: dict, parallel: int | None,
        repeat: int = 1, scenarios: tuple = SCENARIOS) -> list:
    """Each scenario runs through every tool in turn, so all see the same load on the machine;
    the hosts then hold every tool's CTs (each tool reads and changes only its own)."""
    sim_dir = workdir / "sim"
    _say(f"starting {size.hosts} simulated hosts ({size.latency_ms:g} ms per round trip, "
         f"{size.create_ms:g} ms per pct create, {size.apps} images of {size.image_mb:g} MB)")
    sim = bench_fleet.start(sim_dir, size)
    results = {scenario: {tool: [] for tool in tools} for scenario in SCENARIOS}
    proxy = None
    runners: dict = {}
    try:
        ports = {}
        if size.latency_ms > 0:
            proxy = LatencyProxy([h.port for h in sim.hosts], size.latency_ms, workdir / "latency.log")
            ports = {h.name: proxy.ports[h.port] for h in sim.hosts}
        if "homefleet" in tools:
            runners["homefleet"] = HomefleetRunner(workdir / "homefleet", sim, size, env=env, parallel=parallel,
                                                   ports=ports)
        if "floor" in tools:
            runners["floor"] = FloorRunner(workdir / "floor", size, env=env, parallel=parallel)
        if "baseline" in tools:
            runners["baseline"] = BaselineRunner(workdir / "baseline", sim, size, ports=ports)
        if "ansible" in tools:
            runners["ansible"] = AnsibleRunner(workdir / "ansible", sim, size, ports=ports)
        for rep in range(repeat):
            for scenario in scenarios:
                for tool, runner in runners.items():
                    figures = runner.run(scenario)
                    results[scenario][tool].append(figures)
                    _say(f"{tool:9} {scenario:8} {figures['wall_s']:7.2f} s ({figures['cpu_s']:6.2f} s CPU)  "
                         f"{figures.get('commands', 0):4} commands  {figures.get('ssh_connections', 0):4} connections"
                         + (f"  [run {rep + 1}/{repeat}]" if repeat > 1 else ""))
                _check_hosts(sim, size, list(runners), scenario)
    finally:
        if "ansible" in runners:
            runners["ansible"].stop()
        if proxy is not None:
            proxy.stop()
        bench_fleet.stop(sim_dir)
    return [line(scenario, size, results[scenario]) for scenario in scenarios]


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--hosts", type=int, default=2, help="simulated PVE hosts (default 2)")
    parser.add_argument("--apps", type=int, default=3, help="apps per host (default 3)")
    parser.add_argument("--latency-ms", type=float, default=30,
                        help="round-trip time of the link to every host (default 30)")
    parser.add_argument("--create-ms", type=float, default=1500, help="added to every pct create (default 1500)")
    parser.add_argument("--image-mb", type=float, default=16, help="payload of each app image (default 16)")
    parser.add_argument("--only", action="append", choices=TOOLS,
                        help="run this tool only (repeat for several; default all four)")
    parser.add_argument("--provider-workers", type=int,
                        help="HOMEFLEET_PROVIDER_WORKERS for the provider (4 = the stock pulumi.dynamic limit)")
    parser.add_argument("--parallel", type=int, help="pulumi --parallel")
    parser.add_argument("--repeat", type=int, default=1, help="run everything N times; times are medians")
    parser.add_argument("--dir", type=Path, help="work folder (kept); default a temporary one, removed")
    parser.add_argument("--plot", type=Path, metavar="FILE",
                        help="sweep 1-10 hosts x 3 apps and 3-20 apps on one host instead, and plot wall "
                             "times to FILE (.svg or .png; the table goes to FILE's stem + .md)")
    parser.add_argument("--sweep-hosts", default=",".join(map(str, sweep.HOSTS)), help="hosts for --plot")
    parser.add_argument("--sweep-apps", default=",".join(map(str, sweep.APPS)), help="apps per host for --plot")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the fleet on the way out
    if args.hosts < 1 or args.apps < 1 or args.repeat < 1:
        parser.error("--hosts, --apps and --repeat must be at least 1")
    if min(args.latency_ms, args.create_ms, args.image_mb) < 0:
        parser.error("--latency-ms, --create-ms and --image-mb cannot be negative")
    if args.provider_workers is not None and not 1 <= args.provider_workers <= 64:
        parser.error("--provider-workers must be from 1 to 64")
    size = bench_fleet.Size(args.hosts, args.apps, args.latency_ms, args.create_ms, args.image_mb)
    tools = [t for t in TOOLS if t in args.only] if args.only else list(TOOLS)
    env = {"HOMEFLEET_PROVIDER_WORKERS": str(args.provider_workers)} if args.provider_workers else {}
    if args.dir is not None and args.dir.exists() and any(args.dir.iterdir()):
        parser.error(f"--dir {args.dir}: give a new or empty folder (a used one holds another run's state)")
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="homefleet-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.plot:
            hosts = tuple(int(x) for x in args.sweep_hosts.split(",") if x)
            apps = tuple(int(x) for x in args.sweep_apps.split(",") if x)
            for _, entry in sweep.sweep(size, workdir.resolve(), tools, env, args.parallel, args.plot.resolve(),
                                        run, _say, hosts, apps):
                print(json.dumps(entry), flush=True)
            return 0
        for entry in run(size, workdir.resolve(), tools, env, args.parallel, args.repeat):
            print(json.dumps(entry), flush=True)
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
