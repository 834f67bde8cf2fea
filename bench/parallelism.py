"""`python -m bench.parallelism`: what the dynamic provider server's 4 worker threads cost.

One fleet (default 10 hosts x 1 app); `up`, `refresh --skip-preview` and `destroy` through
homefleet with the stock pool (HOMEFLEET_PROVIDER_WORKERS=4) and a widened one, the two
interleaved `--repeat` times so load on the machine affects both alike. Prints one JSON
line per setting with the median wall times and the most `pct create` calls that ran at
once, then one line with the ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path

from . import counters, fleet as bench_fleet
from .__main__ import _say
from .homefleet_side import HomefleetRunner
from .latency import LatencyProxy

SCENARIOS = ("up", "refresh", "destroy")


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parallelism", description=__doc__)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--apps", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=30)
    parser.add_argument("--create-ms", type=float, default=1500)
    parser.add_argument("--image-mb", type=float, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 16],
                        help="HOMEFLEET_PROVIDER_WORKERS settings to compare (4 = stock)")
    parser.add_argument("--parallel", type=int, help="pulumi --parallel (default: the CLI's)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the fleet on the way out
    size = bench_fleet.Size(args.hosts, args.apps, args.latency_ms, args.create_ms, args.image_mb)
    if args.dir is not None and args.dir.exists() and any(args.dir.iterdir()):
        parser.error(f"--dir {args.dir}: give a new or empty folder (a used one holds another run's state)")
    workdir = (args.dir or Path(tempfile.mkdtemp(prefix="homefleet-par-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    sim_dir = workdir / "sim"
    sim = bench_fleet.start(sim_dir, size)
    runs = {w: {s: [] for s in SCENARIOS} for w in args.workers}
    in_flight = {w: [] for w in args.workers}
    proxy = None
    try:
        ports = {}
        if size.latency_ms > 0:
            proxy = LatencyProxy([h.port for h in sim.hosts], size.latency_ms, workdir / "latency.log")
            ports = {h.name: proxy.ports[h.port] for h in sim.hosts}
        runners = {w: HomefleetRunner(workdir / f"workers-{w}", sim, size,
                                      env={"HOMEFLEET_PROVIDER_WORKERS": str(w)}, parallel=args.parallel,
                                      ports=ports)
                   for w in args.workers}
        for rep in range(args.repeat):
            for w, runner in runners.items():
                for scenario in SCENARIOS:
                    figures = runner.run(scenario)
                    runs[w][scenario].append(figures["wall_s"])
                    if scenario == "up":
                        in_flight[w].append(counters.creates_in_flight(figures["_activity"], size.create_ms / 1000))
                    _say(f"repeat {rep + 1} workers {w:3}: {scenario:8} {figures['wall_s']:6.2f} s")
    finally:
        if proxy is not None:
            proxy.stop()
        bench_fleet.stop(sim_dir)
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    medians = {}
    for w in args.workers:
        medians[w] = {s: round(statistics.median(runs[w][s]), 2) for s in SCENARIOS}
        print(json.dumps({"workers": w, "hosts": size.hosts, "apps_per_host": size.apps, "parallel": args.parallel,
                          "median_wall_s": medians[w], "walls_s": runs[w],
                          "creates_in_flight_max": max(in_flight[w])}), flush=True)
    base = args.workers[0]
    for w in args.workers[1:]:
        print(json.dumps({"ratio": f"workers {w} / workers {base}",
                          **{s: round(medians[w][s] / medians[base][s], 3) for s in SCENARIOS}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
