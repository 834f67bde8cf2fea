"""Issue 15: the recovery paths of a safe upgrade that an earlier run left half-way, through the
real engine on one simulated PVE host. The connection is cut *while* a command runs (the `drop`
fault with `after_ms`, with `restore_delay_ms` / `backup_delay_ms` making the step slow enough):

* mid-`pct restore` (a rollback's restore): PVE's worker dies at its next output line, leaving
  the CT as a bare `lock: create` config (its old volumes already freed) -> the next `up`
  restores the backup again and converges (providers/upgrade.py resume_restore);
* the same, then the user unlocks and destroys the CT: gone -> the next `up` restores it;
* before the recreate's new CT (volumes waiting on the holder) -> the next `up` creates the CT
  again from the holder, gates it and rolls back to the backup (upgrade.created_again);
* mid-`vzdump`: the partial archive is removed, never used nor counted, no good backup pruned;
* a `deleteData` delete backs the CT up first (the preview says so), then destroys its volumes.

Each: the data from before the upgrade is intact, the backup a rollback needs is kept.
The tests run in order on one fleet (each builds on the previous one's host).
"""

import re
import time

import pytest

from homefleet.preview_summary import summarize
from sim.testing import clear_faults, running_fleet, set_faults, ssh_run

from .conftest import hosts_config
from .helpers import CRASH_SETTLE, ct_config, ct_list
from .upgrade_kit import answer, backups, ct_file, ours, pending, put_file, sh, template_line, write_package

pytestmark = pytest.mark.engine
STACK = "hfrec"
VMID = 700
DEL_STACK, DEL_VMID = "hfdel", 710


def deploy(project, fleet, version: str):
    write_package(project, "test-app", version)
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet, settle=CRASH_SETTLE), "homefleet:apps": {
        "app": {"host": "pve1", "package": "test-app", "vmid": VMID, "healthTimeout": 6}}})
    return project.pulumi("up", "--yes", stack=STACK)


def cut_mid(pve1, pattern: str, knob: str, after_ms: int = 3000, slow_ms: int = 8000) -> None:
    """The next command matching `pattern` runs, and the connection dies `after_ms` into it,
    while the step `knob` (backup_delay_ms / restore_delay_ms) takes `slow_ms` longer."""
    (pve1.state / knob).write_text(str(slow_ms))
    set_faults(pve1, [{"match": pattern, "action": "drop", "after_ms": after_ms, "times": 1}])


def calm(pve1) -> None:
    clear_faults(pve1)
    for knob in ("backup_delay_ms", "restore_delay_ms"):
        (pve1.state / knob).unlink(missing_ok=True)


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    return predicate()


def raw_config(pve1, vmid: int):
    """The CT's config file as PVE keeps it (None when there is none)."""
    rc, out, _ = ssh_run(pve1, ["cat", f"/etc/pve/lxc/{vmid}.conf"])
    return out if rc == 0 else None


def busy(pve1, word: str) -> bool:
    rc, out, _ = ssh_run(pve1, ["sh", "-c", f"ps -eo args | grep -v grep | grep -c '{word}' || true"])
    return rc == 0 and out.strip() not in ("", "0")


def dump_files(pve1) -> list:
    return sh(pve1, "ls /var/lib/vz/dump/").split()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=1) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def pve1(fleet):
    yield fleet["pve1"]
    calm(fleet["pve1"])


@pytest.fixture(scope="module")
def deployed(fleet, project, pve1):
    run = deploy(project, fleet, "1.0")
    assert run.ok, (run.stdout + run.stderr)[-4000:]
    put_file(pve1, VMID, "/data/precious", "user data")


# ---------------------------------------------------------------- resume_restore

def test_a_restore_cut_mid_extraction_leaves_lock_create_and_the_next_up_converges(fleet, project, pve1, deployed):
    cut_mid(pve1, r"pct.{0,3} restore", "restore_delay_ms")
    try:
        run = deploy(project, fleet, "2.1-unhealthy")
    finally:
        clear_faults(pve1)
    assert not run.ok, run
    # PVE's worker dies at its next output line: the old volumes are freed, the config is a bare lock
    assert wait_for(lambda: raw_config(pve1, VMID) is not None and not busy(pve1, "pct restore")), \
        "the interrupted restore did not end"
    assert re.fullmatch(r"lock: create\s*", raw_config(pve1, VMID)), raw_config(pve1, VMID)
    needed = [b["volid"] for b in ours(pve1, STACK, "app", VMID) if b["notes"].endswith("test-app_2.1-unhealthy")]
    assert len(needed) == 1, "the backup the rollback needs is there"
    calm(pve1)
    # a refresh meanwhile keeps the app in the state (the CT is half-restored, not gone)
    assert project.pulumi("refresh", "--yes", stack=STACK).ok
    run = deploy(project, fleet, "2.3")
    assert run.ok, (run.stdout + run.stderr)[-4000:]
    assert answer(pve1, VMID) == "test-app 2.3"
    assert ct_file(pve1, VMID, "/data/precious") == "user data"
    assert ct_file(pve1, VMID, "/data/migrated-by-2.1") is None
    assert needed[0] in {b["volid"] for b in backups(pve1)}, "the backup the rollback used was pruned"
    assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok


def test_a_ct_gone_after_an_interrupted_restore_is_restored_by_the_next_up(fleet, project, pve1, deployed):
    put_file(pve1, VMID, "/data/on-2.3", "written on 2.3")
    cut_mid(pve1, r"pct.{0,3} restore", "restore_delay_ms")
    try:
        run = deploy(project, fleet, "2.2-crash")
    finally:
        clear_faults(pve1)
    assert not run.ok, run
    assert wait_for(lambda: raw_config(pve1, VMID) is not None and not busy(pve1, "pct restore"))
    # the user clears what PVE left (`unable to restore CT 700 - CT is locked (create)`)
    sh(pve1, f"pct unlock {VMID} && pct destroy {VMID}")
    assert raw_config(pve1, VMID) is None
    needed = [b["volid"] for b in ours(pve1, STACK, "app", VMID) if b["notes"].endswith("test-app_2.2-crash")]
    assert len(needed) == 1
    calm(pve1)
    run = deploy(project, fleet, "2.0")
    assert run.ok, (run.stdout + run.stderr)[-4000:]
    assert answer(pve1, VMID) == "test-app 2.0"
    assert ct_file(pve1, VMID, "/data/on-2.3") == "written on 2.3"
    assert ct_file(pve1, VMID, "/data/precious") == "user data"
    assert ct_file(pve1, VMID, "/data/migrated-by-2.2") is None
    assert needed[0] in {b["volid"] for b in backups(pve1)}
    assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok


# ---------------------------------------------------------------- created_again

def test_a_recreate_cut_before_the_new_ct_is_created_again_gated_and_rolled_back(fleet, project, pve1, deployed):
    put_file(pve1, VMID, "/data/on-2.0", "written on 2.0")
    before = {b["volid"] for b in backups(pve1)}
    set_faults(pve1, [{"match": r"section:created", "action": "drop", "times": 1}])
    try:
        run = deploy(project, fleet, "2.1-unhealthy")
    finally:
        clear_faults(pve1)
    assert not run.ok, run
    assert raw_config(pve1, VMID) is None, "the drop did not land between the old CT's destroy and the new one"
    taken = [b["volid"] for b in ours(pve1, STACK, "app", VMID) if b["volid"] not in before]
    assert len(taken) == 1, taken
    # the next up creates it again from the holder, gates the upgrade and rolls it back
    run = deploy(project, fleet, "2.1-unhealthy")
    assert not run.ok, run
    out = run.stdout + run.stderr
    assert "restored" in out and taken[0] in out, out[-3000:]
    assert answer(pve1, VMID) == "test-app 2.0"
    assert "2.0" in template_line(pve1, VMID)
    for path, text in (("/data/on-2.0", "written on 2.0"), ("/data/on-2.3", "written on 2.3"),
                       ("/data/precious", "user data")):
        assert ct_file(pve1, VMID, path) == text, path
    assert ct_file(pve1, VMID, "/data/migrated-by-2.1") is None
    assert taken[0] in {b["volid"] for b in backups(pve1)}
    assert [row["vmid"] for row in ct_list(pve1)] == [VMID], "no holder or stray CT left"
    assert pending(project, STACK) == [("update", "app")]


# ---------------------------------------------------------------- vzdump cut half-way

def test_a_backup_cut_mid_archive_is_never_used_nor_counted(fleet, project, pve1, deployed):
    good = [b["volid"] for b in ours(pve1, STACK, "app", VMID)]
    was = answer(pve1, VMID)
    cut_mid(pve1, r"vzdump.{0,3} .*--notes-template", "backup_delay_ms")
    try:
        run = deploy(project, fleet, "2.3")
    finally:
        clear_faults(pve1)
    assert not run.ok, run
    # vzdump is interrupted (its signal handlers): the lock is removed, the `.dat` deleted,
    # the CT it stopped for the archive started again
    assert wait_for(lambda: not busy(pve1, "vzdump")), "the interrupted vzdump did not end"
    assert wait_for(lambda: "lock" not in ct_config(pve1, VMID))
    assert not [f for f in dump_files(pve1) if f.endswith(".dat")], dump_files(pve1)
    cut = [f for f in dump_files(pve1) if f.endswith(".log") and f"vzdump-lxc-{VMID}-" in f
           and "interrupted by signal" in sh(pve1, f"cat /var/lib/vz/dump/{f}")]
    assert len(cut) == 1, "the cut did not land while vzdump ran"
    assert [b["volid"] for b in ours(pve1, STACK, "app", VMID)] == good, "a partial archive is listed"
    assert wait_for(lambda: answer(pve1, VMID) == was), "the old version runs again"
    calm(pve1)
    run = deploy(project, fleet, "2.3")
    assert run.ok, (run.stdout + run.stderr)[-4000:]
    assert answer(pve1, VMID) == "test-app 2.3"
    assert ct_file(pve1, VMID, "/data/precious") == "user data"
    now = ours(pve1, STACK, "app", VMID)
    new = [b for b in now if b["volid"] not in good]
    assert len(new) == 1, new
    # keepBackups 3 (default): the new one and the newest two good ones, nothing else pruned
    assert [b["volid"] for b in now] == good[-2:] + [new[0]["volid"]]


# ---------------------------------------------------------------- deleteData

def test_a_delete_data_delete_is_backed_up_first_and_the_preview_says_so(fleet, project, pve1):
    config = {"homefleet:hosts": hosts_config(fleet, settle=CRASH_SETTLE), "homefleet:apps": {
        "db": {"host": "pve1", "image": "ghcr.io/homefleet/test-app:1.0", "vmid": DEL_VMID, "healthTimeout": 6,
               "volumes": [{"path": "/data", "size": 1}], "deleteData": True}}}
    project.write_stack(DEL_STACK, config)
    project.pulumi("up", "--yes", stack=DEL_STACK, check=True)
    put_file(pve1, DEL_VMID, "/data/records", "the user records")
    volumes = [v.split(",", 1)[0] for k, v in ct_config(pve1, DEL_VMID).items() if re.fullmatch(r"mp\d+", k)]
    assert volumes
    project.write_stack(DEL_STACK, {**config, "homefleet:apps": {}})
    summary = summarize(project.pulumi("preview", "--json", stack=DEL_STACK, check=True).json())
    assert f"CT {DEL_VMID} backed up to `local`, then deleted with its data (deleteData: true; volumes `/data`)" \
        in summary, summary
    before = {b["volid"] for b in backups(pve1)}
    assert project.pulumi("destroy", "--yes", stack=DEL_STACK).ok
    new = [b for b in backups(pve1) if b["volid"] not in before]
    assert len(new) == 1, new
    assert new[0]["notes"] == f"homefleet {DEL_STACK}/db vmid {DEL_VMID} before delete with deletedata", new[0]
    path = sh(pve1, f"pvesm path {new[0]['volid']}").strip()
    assert sh(pve1, f"zstd -dc {path} | tar -xOf - ./data/records") == "the user records"
    assert raw_config(pve1, DEL_VMID) is None
    for volid in volumes:
        listed = sh(pve1, f"pvesm list {volid.split(':', 1)[0]}")
        assert volid not in listed, f"data volume {volid} left after the deleteData delete"
