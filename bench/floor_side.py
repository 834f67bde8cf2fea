"""The engine's floor (bench/floor/): the same Pulumi CLI, engine, language host and dynamic
provider server, with as many resources as homefleet declares for the fleet and the same
scenarios, but a provider that does nothing. homefleet's time over it is homefleet's own."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import yaml

from sim.engine import REPO, LocalProject, offline_env

from . import fleet as bench_fleet
from .homefleet_side import children_cpu, scenario_args
from .memory import ProviderSampler

PROGRAM = Path(__file__).resolve().parent / "floor"
STACK = "floor"


class FloorRunner:
    def __init__(self, workdir: Path, size: bench_fleet.Size, env: dict | None = None,
                 parallel: int | None = None):
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        for name in ("Pulumi.yaml", "__main__.py"):
            shutil.copy2(PROGRAM / name, workdir / name)
        if not (workdir / ".venv").exists():
            (workdir / ".venv").symlink_to(REPO / ".venv")
        backend = workdir / ".backend"
        backend.mkdir(exist_ok=True)
        self.project = LocalProject(workdir, backend, offline_env(backend, env))
        self.size = size
        self.parallel = ["--parallel", str(parallel)] if parallel else []
        init = self.project.pulumi("stack", "init", STACK)
        if not init.ok and "already exists" not in init.stderr:
            raise RuntimeError(str(init))

    def _write(self, memory: dict | None = None) -> None:
        config = {"floor:hosts": self.size.hosts, "floor:apps": self.size.apps, "floor:memory": memory or {}}
        (self.project.workdir / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": config}))

    def run(self, scenario: str) -> dict:
        args = scenario_args(scenario, self._write, bench_fleet.app_name(bench_fleet.host_names(self.size)[0], 0))
        with ProviderSampler(self.project.workdir) as sampler:
            cpu = children_cpu()
            began = time.monotonic()
            run = self.project.pulumi(*args, "--yes", *self.parallel, stack=STACK)
            wall = time.monotonic() - began
            cpu = children_cpu() - cpu
        if not run.ok:
            raise RuntimeError(f"floor: pulumi {' '.join(args)} failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}")
        return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": sampler.peak_mb,
                "processes": sampler.processes, "resources": 2 * self.size.cts}
