"""Issue 19.10: docs/truenas.md logs in as `truenas_admin` (with `sudo: true`); the simulated NAS
refused that user (no such account), so the documented host entry could not be tried on it."""

import pytest

from sim import client
from sim.testing import run_on, running_fleet


@pytest.fixture(scope="module")
def nas(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("nas"), hosts=0, truenas=1) as fleet:
        yield next(h for h in fleet.hosts if h.kind == "truenas")


def test_the_documented_admin_user_logs_in_and_runs_midclt_with_sudo(nas):
    ssh = client.connect(nas.address, nas.port, nas.host_key, nas.client_key, user="truenas_admin")
    try:
        rc, out, err = run_on(ssh, ["sudo", "-n", "midclt", "call", "system.version_short"])
        assert rc == 0, err
        assert out.strip().strip('"')[:2].isdigit()
        rc, out, _ = run_on(ssh, ["id", "-un"])
        assert rc == 0 and out.strip() in ("truenas_admin", "root")
    finally:
        ssh.close()


def test_an_unknown_user_is_still_refused(nas):
    with pytest.raises(Exception):
        client.connect(nas.address, nas.port, nas.host_key, nas.client_key, user="nobody-here")
