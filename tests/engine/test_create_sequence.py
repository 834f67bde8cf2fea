"""The create sequence as a real PVE host needs it (issue 13 items 1, 4, 5, 6), through the
real engine against simulated hosts that fail where PVE fails."""

import pytest

from sim.engine import LocalProject
from sim.testing import running_fleet, ssh_run

from .conftest import hosts_config
from .helpers import ct_config, tool_count, tools_since

pytestmark = pytest.mark.engine
STACK = "seq"
APP = {"host": "pve1", "image": "ghcr.io/homefleet/test-app:1.0"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=1) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return LocalProject.create(tmp_path_factory.mktemp("project"))


def deploy(project, fleet, apps, check=True):
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": apps})
    return project.pulumi("up", "--yes", stack=STACK, check=check)


def sh(host, command: str) -> str:
    rc, out, err = ssh_run(host, ["sh", "-c", command])
    assert rc == 0, err
    return out


# ---- item 1: bind mounts are added after `pct create`, before `pct start` ----

def test_bind_mount_is_added_after_create_and_the_dataset_is_untouched(fleet, project):
    """PVE extracts the image with every create-time mount point mounted read-write: the
    image's /media would be chowned onto the user's root-owned dataset (EPERM, the create
    fails) or, were it owned by a mapped id, filled with the image's files."""
    pve1 = fleet["pve1"]
    before = sh(pve1, "stat -c '%u:%g %a' /tank/media; ls -A /tank/media")
    start = tool_count(pve1)
    deploy(project, fleet, {"media": {**APP, "vmid": 400, "mounts": ["/tank/media:/media:ro"]}})
    ran = tools_since(pve1, start)
    create = next(argv for argv in ran if argv[:3] == ["pct", "create", "400"])
    assert not any(arg.startswith("/tank/") for arg in create), create
    mount = ran.index(["pct", "set", "400", "--mp0", "/tank/media,mp=/media,ro=1"])
    assert ran.index(create) < mount < ran.index(["pct", "start", "400"])
    assert ct_config(pve1, 400)["mp0"] == "/tank/media,mp=/media,ro=1"
    assert sh(pve1, "stat -c '%u:%g %a' /tank/media; ls -A /tank/media") == before
