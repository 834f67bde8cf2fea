"""One fleet of two simulated TrueNAS hosts for the tests of this folder: nas1 runs the
24.10 midclt, nas2 the 25.04 one (docs/dev/simulator.md). Jobs and deployments are quick."""

from __future__ import annotations

import os

import pytest

from sim.testing import running_fleet

TIMING = '{"job_seconds": 0.15, "deploy_seconds": 0.3}'
# How long an app must look healthy in a row (providers/truenas_app.py; 5 s by default);
# also reaches the engine tests' `pulumi` runs through their copied environment.
os.environ.setdefault("HOMEFLEET_TRUENAS_STABLE_SECONDS", "0.5")


@pytest.fixture(scope="package")
def nas_fleet(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("truenas-sim"), hosts=0, truenas=2,
                       truenas_version="24.10,25.04") as fleet:
        for host in fleet.hosts:
            (host.state / "truenas_timing.json").write_text(TIMING)
        yield fleet
