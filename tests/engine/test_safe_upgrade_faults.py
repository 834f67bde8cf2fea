"""Issue 15 "Done when", fault tests: the host connection drops during the upgrade's backup and
during the rollback's restore; each converges on the next `pulumi up` with nothing lost.

The simulator's `drop` fault kills the SSH session of the matching command (sim/shell.py
apply_fault), as a lost connection would; the next `up` runs with no fault.
"""

import pytest

from sim.testing import clear_faults, running_fleet, set_faults

from .conftest import hosts_config
from .helpers import ct_by_name
from .upgrade_kit import answer, backups, ct_file, ours, pending, put_file, template_line, write_package

pytestmark = pytest.mark.engine
STACK = "upgfault"
VMID = 600


def deploy(project, fleet, version: str):
    write_package(project, "test-app", version)
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": {
        "app": {"host": "pve1", "package": "test-app", "vmid": VMID, "healthTimeout": 12}}})
    return project.pulumi("up", "--yes", stack=STACK)


def dropped(pve1, pattern: str) -> None:
    set_faults(pve1, [{"match": pattern, "action": "drop", "times": 1}])


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=1) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def pve1(fleet):
    yield fleet["pve1"]
    clear_faults(fleet["pve1"])


@pytest.fixture(scope="module")
def deployed(fleet, project, pve1):
    run = deploy(project, fleet, "1.0")
    assert run.ok, run
    put_file(pve1, VMID, "/data/precious", "user data")


def test_the_connection_drops_during_the_backup_and_the_next_up_upgrades(fleet, project, pve1, deployed):
    before = [b["volid"] for b in backups(pve1)]
    dropped(pve1, r"vzdump")
    try:
        run = deploy(project, fleet, "2.0")
    finally:
        clear_faults(pve1)
    assert not run.ok, run
    assert "connection" in run.stdout + run.stderr
    # nothing changed yet: the old version runs with its data, the upgrade is pending
    assert answer(pve1, VMID) == "test-app 1.0"
    assert ct_file(pve1, VMID, "/data/precious") == "user data"
    assert pending(project, STACK) == [("update", "app")]
    run = deploy(project, fleet, "2.0")
    assert run.ok, run
    assert answer(pve1, VMID) == "test-app 2.0"
    assert ct_file(pve1, VMID, "/data/precious") == "user data"
    new = [b for b in ours(pve1, STACK, "app", VMID) if b["volid"] not in before]
    assert len(new) == 1, new


def test_the_connection_drops_during_the_restore_and_the_next_up_rolls_back(fleet, project, pve1, deployed):
    put_file(pve1, VMID, "/data/on-2.0", "written on 2.0")
    dropped(pve1, r"pct restore")
    try:
        run = deploy(project, fleet, "2.1-unhealthy")
    finally:
        clear_faults(pve1)
    assert not run.ok, run
    taken = [b["volid"] for b in ours(pve1, STACK, "app", VMID)]
    assert taken, "the backup the rollback needs is still there"
    # the next up finds the new version running unhealthy and finishes the rollback
    run = deploy(project, fleet, "2.1-unhealthy")
    assert not run.ok, run
    out = run.stdout + run.stderr
    assert "restored" in out and taken[-1] in out, out[-3000:]
    assert answer(pve1, VMID) == "test-app 2.0"
    assert ct_file(pve1, VMID, "/data/on-2.0") == "written on 2.0"
    assert ct_file(pve1, VMID, "/data/precious") == "user data"
    assert ct_file(pve1, VMID, "/data/migrated-by-2.1") is None
    assert "2.0" in template_line(pve1, VMID)
    assert pending(project, STACK) == [("update", "app")]
    run = deploy(project, fleet, "2.3")
    assert run.ok, run
    assert answer(pve1, VMID) == "test-app 2.3" and ct_by_name(pve1, "app")["status"] == "running"
    assert ct_file(pve1, VMID, "/data/on-2.0") == "written on 2.0"
