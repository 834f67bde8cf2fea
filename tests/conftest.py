"""Shared fixtures.

`sim_hosts`: two simulated Proxmox hosts (pve1, pve2) and the local registry,
started once per test session in a temporary folder and stopped at its end.
It yields a `sim.testing.SimFleet`; use the helpers of `sim.testing` with it:

    def test_something(sim_hosts):
        host = sim_hosts["pve1"]
        rc, out, err = ssh_run(host, ["pct", "list"])

Tests that change a host's latency or fault rules put them back
(`sim.testing.reset_host`) so the next test finds a plain host.
"""

from __future__ import annotations

import pytest

from sim.testing import running_fleet


@pytest.fixture(scope="session")
def sim_hosts(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("sim"), hosts=2) as fleet:
        yield fleet
