"""The immich catalog entry (server, machine learning, postgres with its vector extension
image, valkey) deployed through the real engine as four CTs on a simulated Proxmox host.

The package may pin postgres and valkey by digest, as immich's own compose file does (it
pins them by tag for now: issue 20); the simulated registry holds locally built images
whose digests cannot match upstream, so this test deploys a copy of the package with any
digests removed. Everything else is the catalog file as shipped.
"""

import re

import pytest

from sim.engine import LocalProject
from sim.testing import running_fleet

from .helpers import hosts_config, ct_config, ct_list

pytestmark = pytest.mark.engine
NETWORK = {"cidr": "198.18.210.0/24", "gateway": "198.18.210.1", "range": "198.18.210.10-198.18.210.60"}


@pytest.fixture(scope="module")
def pve(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=1) as fleet:
        yield fleet


def test_immich_runs_as_four_containers_in_order(pve, tmp_path):
    project = LocalProject.create(tmp_path / "p")
    compose = project.workdir / "packages" / "compose" / "immich.yml"
    compose.write_text(re.sub(r"@sha256:[0-9a-f]{64}", "", compose.read_text()))
    hosts = hosts_config(pve)
    hosts["pve1"]["composeNetwork"] = NETWORK
    project.write_stack("photos", {"homefleet:hosts": hosts,
                                   "homefleet:apps": {"immich": {"package": "immich", "host": "pve1"}}})
    project.set_secret("photos", "secrets.immich.DB_PASSWORD", "immich-db-pw", path=True)
    project.pulumi("up", "--yes", stack="photos", check=True)
    rows = {r["name"]: r for r in ct_list(pve["pve1"])}
    assert len(rows) == 4 and all(r["status"] == "running" for r in rows.values()), rows
    server = next(r for name, r in rows.items() if "server" in name)
    env = dict(e.split("=", 1) for e in ct_config(pve["pve1"], server["vmid"])["env"])
    assert env["DB_HOSTNAME"].startswith("198.18.210.") and env["REDIS_HOSTNAME"].startswith("198.18.210.")
    assert env["DB_PASSWORD"] == "immich-db-pw"
    state = project.state_file("photos").read_text()
    assert "immich-db-pw" not in state
    outputs = project.pulumi("stack", "output", "--json", stack="photos", check=True).json()
    assert set(outputs["apps"]["immich"]["services"]) == {name.split("immich-")[-1] for name in rows} or \
        len(outputs["apps"]["immich"]["services"]) == 4
    project.pulumi("destroy", "--yes", stack="photos", check=True)
