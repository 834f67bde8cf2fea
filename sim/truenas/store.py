"""The fake middleware's state: JSON files under `$SIM_STATE/sim/truenas/`, one lock.

    apps.json     {name: app record}          (see apps.py)
    jobs.json     [job record, ...]           (see jobs.py)
    docker.json   {"status": "RUNNING", "description": ""}
    pools.json    ["tank"]                    (the pools `pool.query` lists)
    images.json   [image entry, ...]          (Docker's local images, see images.py)
    datasets.json, snapshots.json, fs/, snapdata/   ZFS datasets, snapshots, files (datasets.py)
    app_mounts/<app>/   stands for the app's ix-volumes dataset

Every midclt invocation that reads or writes takes the lock for its whole duration, so
concurrent calls on one host see a consistent state (the middleware serialises too).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Iterator

from . import paths

DOCKER_DEFAULT = {"status": "RUNNING", "description": "Application(s) are currently running"}
POOLS_DEFAULT = ["tank"]


class State:
    def __init__(self, root: Path):
        self.root = root
        self.apps: dict = _read(root / "apps.json", {})
        self.jobs: list = _read(root / "jobs.json", [])
        self.docker: dict = _read(root / "docker.json", dict(DOCKER_DEFAULT))
        self.pools: list = _read(root / "pools.json", list(POOLS_DEFAULT))
        self.images: list = _read(root / "images.json", [])
        self.datasets: list = _read(root / "datasets.json", None) or list(self.pools)     # datasets.py
        self.snapshots: list = _read(root / "snapshots.json", [])

    def save(self) -> None:
        _write(self.root / "apps.json", self.apps)
        _write(self.root / "jobs.json", self.jobs)
        _write(self.root / "docker.json", self.docker)
        _write(self.root / "pools.json", self.pools)
        _write(self.root / "images.json", self.images)
        _write(self.root / "datasets.json", self.datasets)
        _write(self.root / "snapshots.json", self.snapshots)

    def app_mounts(self, name: str) -> Path:
        return self.root / "app_mounts" / name


def _read(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _write(path: Path, data) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(root: Path | None = None) -> Iterator[State]:
    """The middleware state, locked; saved when the block ends without an exception."""
    root = root or paths.middleware_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "middleware.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = State(root)
            yield state
            state.save()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def set_docker_status(state_dir: Path, status: str, description: str = "") -> None:
    """Test helper: what `docker.status` reports (RUNNING, STOPPED, UNCONFIGURED, ...)."""
    with locked(Path(state_dir) / "sim" / "truenas") as state:
        state.docker = {"status": status, "description": description}


def set_pools(state_dir: Path, names: list) -> None:
    """Test helper: the pools `pool.query` lists."""
    with locked(Path(state_dir) / "sim" / "truenas") as state:
        state.pools = list(names)
