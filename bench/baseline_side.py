"""The scenarios through the naive baseline (bench/baseline.py), run as its own process so
its peak memory is its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from sim.engine import REPO, host_entries
from sim.testing import SimFleet

from . import baseline, counters, fleet as bench_fleet
from .homefleet_side import UPDATED_MEMORY, children_cpu


class BaselineRunner:
    def __init__(self, workdir: Path, sim: SimFleet, size: bench_fleet.Size, ports: dict | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sim = sim
        self.size = size
        hosts_json = bench_fleet.reachable_hosts(sim, ports or {})
        plan = baseline.make_plan(host_entries(hosts_json), bench_fleet.apps(size), hosts_json)
        self.plan_file = self.workdir / "plan.json"
        self.plan_file.write_text(json.dumps(plan, indent=1))
        self.state_file = self.workdir / "state.json"
        self.state_file.unlink(missing_ok=True)

    def run(self, scenario: str) -> dict:
        argv = [sys.executable, "-m", "bench.baseline", scenario, "--plan", str(self.plan_file),
                "--state", str(self.state_file)]
        if scenario == "update":
            first = bench_fleet.app_name(bench_fleet.host_names(self.size)[0], 0)
            argv += ["--memory", f"{first}={UPDATED_MEMORY}"]
        start = counters.mark(self.sim)
        cpu = children_cpu()
        began = time.monotonic()
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=3600)
        wall = time.monotonic() - began
        cpu = children_cpu() - cpu
        if proc.returncode != 0:
            raise RuntimeError(f"baseline {scenario} failed:\n{proc.stderr[-4000:]}")
        activity = counters.since(self.sim, start)
        return {
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            **counters.summary(activity, self.size.cts),
            "peak_rss_mb": json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mb"],
            "processes": 1,
            "_activity": activity,
        }
