"""The scenarios through homefleet: the real Pulumi CLI and engine, the real program."""

from __future__ import annotations

import resource
import time
from pathlib import Path

from sim.engine import LocalProject, host_entries
from sim.testing import SimFleet

from . import counters, fleet as bench_fleet
from .memory import ProviderSampler

STACK = "bench"
UPDATED_MEMORY = 384


def scenario_args(scenario: str, write, first_app: str) -> tuple:
    """The `pulumi` command of a bench scenario; `write(memory)` rewrites the stack file first
    for the scenarios that change it (the same for homefleet and the floor)."""
    if scenario == "up":
        write()
        return ("up",)
    if scenario == "noop":
        return ("up",)
    if scenario == "refresh":
        return ("refresh", "--skip-preview")  # the preview pass would read everything a second time
    if scenario == "update":
        write({first_app: UPDATED_MEMORY})
        return ("up",)
    if scenario == "destroy":
        return ("destroy",)
    raise ValueError(scenario)


def children_cpu() -> float:
    """User + system seconds of every waited-for descendant (the pulumi CLI waits for its
    language host and provider processes, so their time is in it)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class HomefleetRunner:
    def __init__(self, workdir: Path, sim: SimFleet, size: bench_fleet.Size, env: dict | None = None,
                 parallel: int | None = None, ports: dict | None = None):
        self.project = LocalProject.create(workdir)
        self.project.env.update(env or {})
        self.sim = sim
        self.size = size
        self.parallel = ["--parallel", str(parallel)] if parallel else []
        self.hosts = host_entries(bench_fleet.reachable_hosts(sim, ports or {}))

    def _write(self, memory: dict | None = None) -> None:
        self.project.write_stack(STACK, {"homefleet:hosts": self.hosts,
                                         "homefleet:apps": bench_fleet.apps(self.size, memory)})

    def _pulumi(self, *args) -> tuple:
        """(wall seconds, CPU seconds of the CLI, language host and providers)."""
        cpu = children_cpu()
        start = time.monotonic()
        run = self.project.pulumi(*args, "--yes", *self.parallel, stack=STACK)
        wall = time.monotonic() - start
        cpu = children_cpu() - cpu
        if not run.ok:
            raise RuntimeError(f"homefleet: pulumi {' '.join(args)} failed:\n"
                               f"{run.stdout[-4000:]}\n{run.stderr[-4000:]}")
        return wall, cpu

    def first_app(self) -> str:
        return bench_fleet.app_name(bench_fleet.host_names(self.size)[0], 0)

    def run(self, scenario: str) -> dict:
        args = scenario_args(scenario, self._write, self.first_app())
        start = counters.mark(self.sim)
        with ProviderSampler(self.project.workdir) as sampler:
            wall, cpu = self._pulumi(*args)
        activity = counters.since(self.sim, start)
        return {
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            **counters.summary(activity, self.size.cts),
            "peak_rss_mb": sampler.peak_mb,
            "processes": sampler.processes,
            "_activity": activity,
        }
