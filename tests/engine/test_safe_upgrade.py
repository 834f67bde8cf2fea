"""Issue 15 item 3 through the real engine on one simulated PVE host: an image upgrade takes a
backup, recreates the CT, waits for health and, when the new version is not healthy, restores
the backup at the same vmid, address and MAC and fails the `up` with the check's output and
the backup it restored. The state keeps the old outputs, so the next preview still shows the
upgrade; the next `up` with a fixed image succeeds; `keepBackups` prunes only homefleet's own
backups of that app; `rollback: false` leaves the new version in place.

The scenario runs in order on one fleet (each test builds on the previous one's host).
"""

import re

import pytest

from sim.testing import running_fleet

from .conftest import hosts_config
from .helpers import CRASH_SETTLE, ct_by_name
from .upgrade_kit import (IMAGE, addresses, answer, backups, ct_file, ours, pending, put_file, sh, template_line,
                          write_package)

pytestmark = pytest.mark.engine
STACK = "upg"
APP_VMID, OTHER_VMID, NOROLL_VMID = 500, 501, 502


def apps():
    return {
        "app": {"host": "pve1", "package": "test-app", "vmid": APP_VMID, "keepBackups": 2, "healthTimeout": 12},
        "other": {"host": "pve1", "image": IMAGE.format("1.0"), "vmid": OTHER_VMID},
        "noroll": {"host": "pve1", "package": "test-app-noroll", "vmid": NOROLL_VMID, "rollback": False,
                   "healthTimeout": 12},
    }


def deploy(project, fleet, version: str, noroll_version="2.0", check=False):
    write_package(project, "test-app", version)
    write_package(project, "test-app-noroll", noroll_version)
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet, settle=CRASH_SETTLE), "homefleet:apps": apps()})
    return project.pulumi("up", "--yes", stack=STACK, check=check)


# ---------------------------------------------------------------- the scenario

@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=1) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def pve1(fleet):
    return fleet["pve1"]


@pytest.fixture(scope="module")
def deployed(fleet, project, pve1):
    deploy(project, fleet, "1.0", check=True)
    # a backup the user made by hand of the same CT, and one in homefleet's words of another app:
    # neither is app's, so keepBackups never prunes them
    sh(pve1, f"vzdump {APP_VMID} --storage local --mode snapshot --notes-template 'my own backup'")
    sh(pve1, f"vzdump {OTHER_VMID} --storage local --mode snapshot "
             f"--notes-template 'homefleet {STACK}/other vmid {OTHER_VMID} before upgrade'")
    return {"foreign": [b["volid"] for b in backups(pve1)]}


def test_an_upgrade_to_a_healthy_image_leaves_exactly_one_new_backup(fleet, project, pve1, deployed):
    before = {b["volid"] for b in backups(pve1)}
    put_file(pve1, APP_VMID, "/data/before-2.0", "kept since 1.0")
    run = deploy(project, fleet, "2.0")
    assert run.ok, run
    new = [b for b in backups(pve1) if b["volid"] not in before]
    assert len(new) == 1, new
    assert new[0]["vmid"] == APP_VMID
    assert new[0]["notes"].startswith(f"homefleet {STACK}/app vmid {APP_VMID} before "), new[0]
    assert re.fullmatch(rf"local:backup/vzdump-lxc-{APP_VMID}-\d{{4}}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar\.zst", new[0]["volid"])
    assert answer(pve1, APP_VMID) == "test-app 2.0"
    assert ct_file(pve1, APP_VMID, "/data/before-2.0") == "kept since 1.0"
    state = project.pulumi("stack", "output", "--json", "--show-secrets", stack=STACK, check=True).json()
    assert state["apps"]["app"]["vmid"] == APP_VMID


def test_an_unhealthy_upgrade_is_rolled_back_and_the_up_fails_with_the_evidence(fleet, project, pve1, deployed):
    put_file(pve1, APP_VMID, "/data/before-2.1", "written on 2.0")
    where = addresses(pve1, APP_VMID)
    before = {b["volid"] for b in backups(pve1)}
    run = deploy(project, fleet, "2.1-unhealthy")
    assert not run.ok, run
    out = run.stdout + run.stderr
    taken = [b for b in ours(pve1, STACK, "app", APP_VMID) if b["volid"] not in before]
    assert len(taken) == 1, taken
    assert "500" in out, "the up fails with the health check's output"
    assert "restored" in out and taken[0]["volid"] in out, "the up says which backup it restored"
    assert answer(pve1, APP_VMID) == "test-app 2.0"
    assert ct_file(pve1, APP_VMID, "/data/before-2.1") == "written on 2.0"
    assert ct_file(pve1, APP_VMID, "/data/before-2.0") == "kept since 1.0"
    assert ct_file(pve1, APP_VMID, "/data/migrated-by-2.1") is None, "what the broken version wrote is gone"
    assert addresses(pve1, APP_VMID) == where, "same vmid, address and MAC"
    assert ct_by_name(pve1, "app")["status"] == "running"
    assert "2.0" in template_line(pve1, APP_VMID)
    assert pending(project, STACK) == [("update", "app")], "the state says the truth: the upgrade is still pending"


def test_an_upgrade_whose_entrypoint_crashes_is_rolled_back(fleet, project, pve1, deployed):
    run = deploy(project, fleet, "2.2-crash")
    assert not run.ok, run
    assert "restored" in run.stdout + run.stderr
    assert answer(pve1, APP_VMID) == "test-app 2.0"
    assert ct_file(pve1, APP_VMID, "/data/migrated-by-2.2") is None
    assert ct_file(pve1, APP_VMID, "/data/before-2.1") == "written on 2.0"


def test_the_next_up_with_a_fixed_image_succeeds(fleet, project, pve1, deployed):
    run = deploy(project, fleet, "2.3")
    assert run.ok, run
    assert answer(pve1, APP_VMID) == "test-app 2.3"
    assert ct_file(pve1, APP_VMID, "/data/before-2.1") == "written on 2.0"
    assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok


def test_keep_backups_prunes_only_homefleets_own_backups_of_that_app(pve1, deployed):
    """Four upgrades of app took four backups; keepBackups: 2 keeps the newest two of them.
    The hand-made backup of the same vmid and the other app's backup are still there."""
    kept = ours(pve1, STACK, "app", APP_VMID)
    assert len(kept) == 2, kept
    assert [b["notes"].split("\n")[0].rsplit("_", 1)[-1] for b in kept] == ["2.2-crash", "2.3"], \
        "the newest two: taken before the upgrades to 2.2-crash and to 2.3"
    volids = {b["volid"] for b in backups(pve1)}
    assert set(deployed["foreign"]) <= volids, "a backup homefleet did not make for this app was pruned"


def test_rollback_false_leaves_the_unhealthy_version_in_place_and_fails(fleet, project, pve1, deployed):
    run = deploy(project, fleet, "2.3", noroll_version="2.1-unhealthy")
    assert not run.ok, run
    out = run.stdout + run.stderr
    assert "500" in out and "rollback" in out, out[-3000:]
    assert "2.1-unhealthy" in template_line(pve1, NOROLL_VMID)
    assert ct_file(pve1, NOROLL_VMID, "/data/migrated-by-2.1") is not None
    assert answer(pve1, NOROLL_VMID) == "test-app 2.1-unhealthy"
