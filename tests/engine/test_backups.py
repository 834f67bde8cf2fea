"""Backups before a risky change (issue 15 item 2) on a simulated PVE host, through the real Pulumi
engine and providers/backups.py: a CT homefleet created has its data volume in vzdump backups;
a backup taken, data written afterwards, and a restore bring the data back as it was at the
backup, at the same vmid and MAC, and the stack still sees no change; pruning keeps only this
app's newest `keep_backups` homefleet backups and never touches anything else on the storage.
"""

import json
import time

import pytest

from providers import backups
from providers.errors import HostCommandError
from providers.transport import SshTarget
from sim.testing import ssh_run

from .conftest import hosts_config
from .helpers import ct_by_name, ct_config

pytestmark = pytest.mark.engine
STACK = "backups"


def apps():
    return {
        "notes": {"host": "pve1", "image": "docker.io/library/nginx:1.27", "memory": 128,
                  "volumes": [{"path": "/data", "size": 1}], "deleteData": True},
        "other": {"host": "pve1", "image": "docker.io/library/nginx:1.27", "memory": 128,
                  "volumes": [{"path": "/data", "size": 1}], "deleteData": True},
    }


def _target(host) -> SshTarget:
    return SshTarget(name=host.name, address=host.address, port=host.port, user=host.user,
                     host_key=host.host_key, key_file=host.client_key)


def _sh(host, command: str) -> str:
    rc, out, err = ssh_run(host, ["sh", "-c", command], timeout=120)
    assert rc == 0, err
    return out


def _props(project, app: str) -> dict:
    """The ProxmoxCT inputs as the state holds them (the provider's `props`)."""
    state = project.pulumi("stack", "export", stack=STACK, check=True).json()
    res = next(r for r in state["deployment"]["resources"]
               if r["type"].endswith(":ProxmoxCT") and r["urn"].endswith(f"::{app}"))
    return res["outputs"]


def _data_dir(host, vmid: int) -> str:
    volume = ct_config(host, vmid)["mp0"].split(",", 1)[0]
    return _sh(host, f"pvesm path {volume}").strip()


def _backup_list(host) -> list:
    return json.loads(_sh(host, "pvesh get /nodes/$(uname -n | cut -d. -f1)/storage/local/content "
                                "--content backup --output-format json"))


@pytest.fixture(scope="module")
def deployed(fleet, project):
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": apps()})
    project.pulumi("up", "--yes", stack=STACK, check=True)
    pve1 = fleet["pve1"]
    return {"notes": ct_by_name(pve1, "notes")["vmid"], "other": ct_by_name(pve1, "other")["vmid"]}


def test_data_volumes_are_created_with_backup_flag(fleet, deployed):
    conf = ct_config(fleet["pve1"], deployed["notes"])
    assert "mp=/data" in conf["mp0"] and ",backup=1" in conf["mp0"], conf["mp0"]


def test_backup_then_restore_brings_the_data_back_as_it_was(fleet, project, deployed):
    pve1, vmid = fleet["pve1"], deployed["notes"]
    props = _props(project, "notes")
    before_conf = ct_config(pve1, vmid)
    data = _data_dir(pve1, vmid)
    _sh(pve1, f"echo v1-rows > {data}/db.txt")
    volid = backups.take(_target(pve1), props, vmid, "image-upgrade")
    assert volid.startswith(f"local:backup/vzdump-lxc-{vmid}-") and volid.endswith(".tar.zst")
    mine = backups.backups_of(_target(pve1), props)
    assert [b["volid"] for b in mine] == [volid]
    assert mine[0]["notes"] == f"homefleet {STACK}/notes vmid {vmid} before image-upgrade"
    assert ct_by_name(pve1, "notes")["status"] == "running", "a snapshot-mode backup leaves the CT running"

    _sh(pve1, f"echo v2-migrated > {data}/db.txt; echo new > {data}/written-after.txt")
    backups.restore(_target(pve1), props, vmid, volid)

    after_conf = ct_config(pve1, vmid)
    assert ct_by_name(pve1, "notes")["status"] == "running"
    assert after_conf["net0"] == before_conf["net0"], "same MAC and network from the archive"
    assert after_conf["description"] == before_conf["description"] and after_conf["tags"] == before_conf["tags"]
    restored = _data_dir(pve1, vmid)
    assert _sh(pve1, f"cat {restored}/db.txt") == "v1-rows\n"
    assert _sh(pve1, f"ls {restored}").split() == ["db.txt", "lost+found"] or \
        _sh(pve1, f"ls {restored}").split() == ["db.txt"], "data written after the backup is gone"
    project.pulumi("refresh", "--yes", stack=STACK, check=True)
    assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok, "the stack sees the CT as it wants it"


def test_prune_keeps_this_apps_newest_and_nothing_else(fleet, project, deployed):
    pve1, vmid, other_vmid = fleet["pve1"], deployed["notes"], deployed["other"]
    target = _target(pve1)
    props = {**_props(project, "notes"), "keep_backups": 2}
    time.sleep(1.1)                           # archive names have one-second resolution
    _sh(pve1, f"vzdump {vmid} --storage local --compress zstd")                  # the user's own backup
    time.sleep(1.1)
    _sh(pve1, f"vzdump {vmid} --storage local --notes-template 'weekly {{{{guestname}}}}'")
    other = backups.take(target, _props(project, "other"), other_vmid, "image-upgrade")
    ours = []
    for _ in range(3):
        time.sleep(1.1)
        ours.append(backups.take(target, props, vmid, "image-upgrade"))
    everything = {b["volid"] for b in _backup_list(pve1)}
    removed = backups.prune(target, props, vmid)
    left = {b["volid"] for b in _backup_list(pve1)}
    mine = [b["volid"] for b in backups.backups_of(target, props)]
    assert mine == [ours[2], ours[1]], "the newest keep_backups of this app stay"
    assert set(removed) == everything - left and ours[0] in removed and len(removed) == 2, removed
    assert other in left, "another app's backup is untouched"
    foreign = [b for b in _backup_list(pve1) if not (b.get("notes") or "").startswith("homefleet ")]
    assert len(foreign) == 2, "the user's backups of the same vmid are untouched"
    assert backups.prune(target, props, vmid) == []


def test_backup_refused_before_any_change_when_storage_cannot_take_it(fleet, project, deployed, monkeypatch):
    pve1, vmid = fleet["pve1"], deployed["notes"]
    props = _props(project, "notes")
    before = ct_config(pve1, vmid)
    listed = _backup_list(pve1)
    for storage, said in (("nope", "(backupStorage) does not exist on this host"),
                          ("local-zfs", "(backupStorage) does not allow backups")):
        with pytest.raises(HostCommandError) as err:
            backups.take(_target(pve1), {**props, "backup_storage": storage}, vmid, "image-upgrade")
        assert said in str(err.value), err.value
    monkeypatch.setattr(backups, "MIN_FREE_KIB", 10 ** 13)      # 10 PiB: more than any disk here
    with pytest.raises(HostCommandError) as err:
        backups.take(_target(pve1), props, vmid, "image-upgrade")
    assert "backup storage 'local' (backupStorage) has" in str(err.value) and "KiB free" in str(err.value)
    assert ct_config(pve1, vmid) == before and ct_by_name(pve1, "notes")["status"] == "running"
    assert _backup_list(pve1) == listed


def test_a_ct_made_before_backup_flags_gets_them_at_backup_time_without_a_diff(fleet, project, deployed):
    """A CT an older homefleet made has data volumes without backup=1: vzdump would leave them out.
    take() sets the flag in place (PVE applies a changed mount point only to a stopped CT, so the
    running CT is stopped for it and started again), the data is in the archive, and the stack
    shows no change for it afterwards."""
    pve1, vmid = fleet["pve1"], deployed["other"]
    mp0 = ct_config(pve1, vmid)["mp0"]
    _sh(pve1, f"pct stop {vmid} && pct set {vmid} --mp0 '{mp0.replace(',backup=1', '')}' && pct start {vmid}")
    assert "backup=" not in ct_config(pve1, vmid)["mp0"]
    data = _data_dir(pve1, vmid)
    _sh(pve1, f"echo precious > {data}/old-ct.txt")
    volid = backups.take(_target(pve1), _props(project, "other"), vmid, "image-upgrade")
    conf = ct_config(pve1, vmid)
    assert conf["mp0"].split(",", 1)[0] == mp0.split(",", 1)[0] and ",backup=1" in conf["mp0"], "same volume, flag set"
    assert ct_by_name(pve1, "other")["status"] == "running"
    assert _sh(pve1, f"cat {data}/old-ct.txt") == "precious\n", "the data is untouched"
    archive = _sh(pve1, f"pvesm path {volid}").strip()
    assert "./data/old-ct.txt" in _sh(pve1, f"tar --zstd -tf {archive}").split()
    project.pulumi("refresh", "--yes", stack=STACK, check=True)
    assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok, "no diff (and no loop) for the flag"


def test_a_lock_a_killed_vzdump_left_fails_the_up_with_the_fix_and_changes_nothing(fleet, project, deployed):
    """`kill -9` of a vzdump leaves `lock: backup` in the CT config (PVE never drops it by itself):
    every later change fails `CT is locked (backup)`; the error says how to clear it."""
    pve1, vmid = fleet["pve1"], deployed["notes"]
    _sh(pve1, f"sed -i '1i lock: backup' /etc/pve/lxc/{vmid}.conf")
    before = ct_config(pve1, vmid)
    changed = apps()
    changed["notes"]["memory"] = 192
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": changed})
    run = project.pulumi("up", "--yes", stack=STACK)
    out = run.stdout + run.stderr
    assert not run.ok and "CT is locked (backup)" in out, out[-3000:]
    assert "`pct unlock <vmid>`" in out, out[-3000:]
    assert ct_config(pve1, vmid) == before
    _sh(pve1, f"pct unlock {vmid}")
    project.pulumi("up", "--yes", stack=STACK, check=True)
    assert ct_config(pve1, vmid)["memory"] == "192"


def test_destroy(fleet, project):
    assert project.pulumi("destroy", "--yes", stack=STACK).ok
