"""One fleet of two simulated TrueNAS hosts for the tests of this folder: nas1 runs the
24.10 midclt, nas2 the 25.04 one (docs/dev/simulator.md). Jobs and deployments are quick."""

from __future__ import annotations

import pytest

from sim.testing import running_fleet

TIMING = '{"job_seconds": 0.15, "deploy_seconds": 0.3}'


@pytest.fixture(scope="package")
def nas_fleet(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("truenas-sim"), hosts=0, truenas=2,
                       truenas_version="24.10,25.04") as fleet:
        for host in fleet.hosts:
            (host.state / "truenas_timing.json").write_text(TIMING)
        yield fleet
