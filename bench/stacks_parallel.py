"""`python -m bench.stacks_parallel`: four stacks (one per simulated host, A apps each) applied
by `python -m homefleet.fleet up --all` with `--parallel 1` and with `--parallel 4`, each host
behind a slow link (bench/latency.py), then a no-change `preview` both ways. Prints one JSON
line per run: {"operation", "parallel", "wall_s", "exit"}; progress goes to stderr.

After each `up` and `preview` the stacks are destroyed (`pulumi destroy`, not timed), so every
`up` starts from empty hosts. `--rounds 2` runs serial-then-parallel, then parallel-then-serial,
so neither always runs on a cold or a warm machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sim.engine import LocalProject, host_entries

from . import fleet as bench_fleet
from .latency import LatencyProxy


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_stacks(project: LocalProject, hosts: dict, size: bench_fleet.Size) -> list:
    apps = bench_fleet.apps(size)
    stacks = []
    for host in bench_fleet.host_names(size):
        stack = f"site-{host}"
        mine = {name: app for name, app in apps.items() if app["host"] == host}
        project.write_stack(stack, {"homefleet:hosts": {host: hosts[host]}, "homefleet:apps": mine})
        stacks.append(stack)
    return stacks


def fleet_run(project: LocalProject, operation: str, parallel: int) -> dict:
    started = time.monotonic()
    proc = subprocess.run([str(project.workdir / ".venv" / "bin" / "python"), "-m", "homefleet.fleet", operation,
                           "--all", "--parallel", str(parallel), "--plain", "--summary", "/dev/null"],
                          cwd=project.workdir, env={**project.env, "CI": "true"}, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        _say(proc.stdout[-3000:] + proc.stderr[-3000:])
    return {"operation": operation, "parallel": parallel, "wall_s": round(wall, 1), "exit": proc.returncode}


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stacks_parallel", description=__doc__)
    parser.add_argument("--apps", type=int, default=2, help="apps per stack (default 2)")
    parser.add_argument("--rtt-ms", type=float, default=30)
    parser.add_argument("--create-ms", type=float, default=1500)
    parser.add_argument("--image-mb", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    size = bench_fleet.Size(hosts=4, apps=args.apps, latency_ms=args.rtt_ms, create_ms=args.create_ms,
                            image_mb=args.image_mb)
    with tempfile.TemporaryDirectory(prefix="homefleet-bench-stacks-") as tmp:
        sim_dir = Path(tmp) / "sim"
        _say(f"starting 4 simulated hosts, rtt {args.rtt_ms:g} ms, {args.apps} apps per stack")
        sim = bench_fleet.start(sim_dir, size)
        proxy = LatencyProxy([h.port for h in sim.hosts], args.rtt_ms, Path(tmp) / "latency.log")
        try:
            ports = {h.name: proxy.ports[h.port] for h in sim.hosts}
            hosts = host_entries(bench_fleet.reachable_hosts(sim, ports))
            project = LocalProject.create(Path(tmp) / "project")
            stacks = write_stacks(project, hosts, size)
            for round_ in range(args.rounds):
                for parallel in ((1, 4) if round_ % 2 == 0 else (4, 1)):
                    for operation in ("up", "preview"):
                        _say(f"round {round_ + 1}: {operation} --parallel {parallel}")
                        print(json.dumps({"round": round_ + 1, **fleet_run(project, operation, parallel)}),
                              flush=True)
                    for stack in stacks:
                        project.pulumi("destroy", "--yes", stack=stack, check=True)
        finally:
            proxy.stop()
            bench_fleet.stop(sim_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
