"""The fake `vzdump`, `pct restore` and backup storage content (pve-manager PVE/VZDump.pm,
pve-container VZDump/LXC.pm and API2/LXC.pm create_vm with restore, pve-storage): grammar,
log lines, errors (message, stream, exit code), what goes into the archive and what a restore
brings back. Tools run as subprocesses against a throw-away host."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from sim.pve.pveam import template_bytes
from sim.pve.testkit import ToolHost

DEBIAN = "debian-12-standard_12.7-1_amd64.tar.zst"
TPL = f"local:vztmpl/{DEBIAN}"
NOTES = "homefleet s1/app vmid {{vmid}} before image-upgrade"


@pytest.fixture
def host(tmp_path) -> ToolHost:
    h = ToolHost(tmp_path)
    h.template_cache.mkdir(parents=True)
    (h.template_cache / DEBIAN).write_bytes(template_bytes(DEBIAN))
    return h


def ok(res):
    assert res.rc == 0, res.stdout + res.stderr
    return res


def make_ct(host: ToolHost, vmid: int = 100, storage: str = "local", start: bool = True) -> dict:
    ok(host.run("pct", "create", str(vmid), TPL, "--rootfs", f"{storage}:1", "--hostname", "app",
                "--mp0", f"{storage}:1,mp=/data,backup=1", "--mp1", f"{storage}:1,mp=/cache",
                "--net0", "name=eth0,bridge=vmbr0,ip=dhcp"))
    bind = host.path("/tank/media")
    bind.mkdir(parents=True, exist_ok=True)
    (bind / "film.mkv").write_text("the user's\n")
    ok(host.run("pct", "set", str(vmid), "--mp2", "/tank/media,mp=/media"))
    if start:
        ok(host.run("pct", "start", str(vmid)))
    return config(host, vmid)


def config(host: ToolHost, vmid: int = 100) -> dict:
    res = ok(host.run("pct", "config", str(vmid)))
    return dict(line.split(": ", 1) for line in res.stdout.splitlines())


def vol_dir(host: ToolHost, value: str):
    volume = value.split(",", 1)[0]
    res = ok(host.run("pvesm", "path", volume))
    from pathlib import Path
    return Path(res.stdout.strip())


def backup(host: ToolHost, vmid: int = 100, *extra: str):
    return host.run("vzdump", str(vmid), "--storage", "local", "--compress", "zstd", "--notes-template", NOTES,
                    *extra)


def archive_of(res) -> str:
    return re.search(r"creating vzdump archive '([^']+)'", res.stdout).group(1)


# --- vzdump --------------------------------------------------------------------------------------

def test_backup_log_lines_and_what_goes_in(host):
    conf = make_ct(host)
    (vol_dir(host, conf["mp0"]) / "db.txt").write_text("rows\n")
    (vol_dir(host, conf["mp1"]) / "cache.bin").write_text("cache\n")
    res = ok(backup(host, 100, "--mode", "stop"))
    out = res.stdout
    assert out.startswith("INFO: starting new backup job: vzdump 100 ")
    for line in ("INFO: Starting Backup of VM 100 (lxc)", "INFO: status = running", "INFO: CT Name: app",
                 "INFO: including mount point rootfs ('/') in backup",
                 "INFO: including mount point mp0 ('/data') in backup",
                 "INFO: excluding volume mount point mp1 ('/cache') from backup (disabled)",
                 "INFO: excluding bind mount point mp2 ('/media') from backup (not a volume)",
                 "INFO: backup mode: stop", "INFO: stopping virtual guest", "INFO: adding notes to backup",
                 "INFO: restarting vm", "INFO: Backup job finished successfully"):
        assert line in out, out
    assert re.search(r"^INFO: Finished Backup of VM 100 \(\d\d:\d\d:\d\d\)$", out, re.M)
    path = archive_of(res)
    assert re.search(r"/var/lib/vz/dump/vzdump-lxc-100-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar\.zst$", path)
    listing = subprocess.run(["tar", "--zstd", "-tf", path], capture_output=True, text=True, check=True).stdout.split()
    assert listing[:2] == ["./etc/vzdump/pct.conf", "./etc/vzdump/pct.fw"]
    assert "./data/db.txt" in listing and "./sbin/init" in listing
    assert not any(n.startswith(("./cache/", "./media/")) and n not in ("./cache/", "./media/") for n in listing)
    conf_text = subprocess.run(["tar", "--zstd", "-xOf", path, "./etc/vzdump/pct.conf"], capture_output=True,
                               text=True, check=True).stdout
    assert "mp0: local:100/vm-100-disk-1.raw,mp=/data,backup=1,size=1G" in conf_text and "lock:" not in conf_text
    assert host.run("pct", "status", "100").stdout == "status: running\n", "stop mode starts the CT again"
    assert "lock" not in config(host)
    name = path.rsplit("/", 1)[1]
    notes = host.path(f"/var/lib/vz/dump/{name}.notes").read_text()
    assert notes == "homefleet s1/app vmid 100 before image-upgrade"
    assert host.path(f"/var/lib/vz/dump/{name[:-len('.tar.zst')]}.log").read_text().count("INFO:") > 5


def test_snapshot_mode_on_dir_storage_falls_back_to_suspend(host):
    make_ct(host)
    res = ok(backup(host, 100, "--mode", "snapshot"))
    assert "INFO: mode failure - some volumes do not support snapshots\nINFO: trying 'suspend' mode instead\n" \
        "INFO: backup mode: suspend\n" in res.stdout


def test_snapshot_mode_on_zfs(host):
    make_ct(host, storage="local-zfs")
    res = ok(backup(host, 100, "--mode", "snapshot"))
    assert "INFO: backup mode: snapshot" in res.stdout and "INFO: create storage snapshot 'vzdump'" in res.stdout
    assert "INFO: cleanup temporary 'vzdump' snapshot" in res.stdout


def test_stopped_ct_is_backed_up_in_stop_mode_and_stays_stopped(host):
    make_ct(host, start=False)
    res = ok(backup(host, 100, "--mode", "snapshot"))
    assert "INFO: status = stopped" in res.stdout and "INFO: backup mode: stop" in res.stdout
    assert "stopping virtual guest" not in res.stdout
    assert host.run("pct", "status", "100").stdout == "status: stopped\n"


def test_missing_guest_fails_the_job(host):
    res = backup(host, 999)
    assert res.rc == 255 and res.stderr == "job errors\n"
    assert "ERROR: Backup of VM 999 failed - unable to find VM '999'" in res.stdout
    assert "INFO: Backup job finished with errors" in res.stdout


def test_storage_errors_die_before_any_guest(host):
    make_ct(host)
    res = host.run("vzdump", "100", "--storage", "nope")
    assert res.rc == 255 and res.stdout == ""
    assert res.stderr == ("could not activate storage 'nope': storage 'nope' does not exist "
                          "could not get storage information for 'nope': storage 'nope' does not exist\n")
    res = host.run("vzdump", "100", "--storage", "local-zfs")
    assert res.rc == 255 and res.stderr == ("could not get storage information for 'local-zfs': "
                                            "can't use storage 'local-zfs' for backups - wrong content type\n")


def test_parameter_errors(host):
    res = host.run("vzdump", "--storage", "local")
    assert res.rc == 255 and res.stderr.startswith("400 Parameter verification failed.\nvmid: property is missing\n")
    res = host.run("vzdump", "100", "--notes-template", "a {{foo}} \\t")
    assert res.rc == 255 and "notes-template: found unknown: escape sequence '\\t' at char 10, variable 'foo' at char 4" \
        in res.stderr
    res = host.run("vzdump", "100", "--mode", "fast")
    assert res.rc == 255 and "mode: value 'fast' does not have a value in the enumeration" in res.stderr


def test_locked_ct_is_not_backed_up(host):
    make_ct(host)
    conf_path = host.path("/etc/pve/nodes/pve/lxc/100.conf")
    conf_path.write_text("lock: create\n" + conf_path.read_text())
    res = backup(host)
    assert res.rc == 255 and "ERROR: Backup of VM 100 failed - CT is locked (create)" in res.stdout


def test_retention_of_the_storage_prunes_only_with_remove(host):
    make_ct(host)
    storage_cfg = host.path("/etc/pve/storage.cfg")
    storage_cfg.parent.mkdir(parents=True, exist_ok=True)
    storage_cfg.write_text("dir: local\n\tpath /var/lib/vz\n\tcontent vztmpl,iso,backup,rootdir,images\n"
                           "\tprune-backups keep-last=1\n")
    ok(backup(host))
    time.sleep(1.1)
    res = backup(host, 100, "--remove", "0")
    assert res.rc == 255 and "There is a max backup limit of 1 enforced by the target storage or the vzdump " \
                              "parameters. Either increase the limit or delete old backups." in res.stdout
    res = ok(backup(host, 100, "--prune-backups", "keep-all=1", "--remove", "0"))
    assert "prune older backups" not in res.stdout
    time.sleep(1.1)
    res = ok(backup(host))
    assert "INFO: prune older backups with retention: keep-last=1" in res.stdout
    assert "INFO: pruned 1 backup(s) not covered by keep-retention policy" in res.stdout \
        or "INFO: pruned 2 backup(s) not covered by keep-retention policy" in res.stdout
    assert len(list(host.path("/var/lib/vz/dump").glob("*.tar.zst"))) == 1


# --- storage content -----------------------------------------------------------------------------

def test_backups_listed_with_notes_and_freed_with_their_files(host):
    make_ct(host)
    res = ok(backup(host))
    name = archive_of(res).rsplit("/", 1)[1]
    volid = f"local:backup/{name}"
    listing = ok(host.run("pvesm", "list", "local", "--content", "backup")).stdout.splitlines()
    assert listing[0].split() == ["Volid", "Format", "Type", "Size", "VMID"]
    assert listing[1].split()[:3] == [volid, "tar.zst", "backup"] and listing[1].split()[-1] == "100"
    content = json.loads(ok(host.run("pvesh", "get", "/nodes/pve/storage/local/content", "--content", "backup",
                                     "--output-format", "json")).stdout)
    assert [(c["volid"], c["notes"], c["vmid"], c["subtype"]) for c in content] == [
        (volid, "homefleet s1/app vmid 100 before image-upgrade", 100, "lxc")]
    assert ok(host.run("pvesm", "list", "local-zfs", "--content", "backup")).stdout.splitlines()[1:] == []
    res = ok(host.run("pvesm", "free", volid))
    assert res.stdout == f"Removed volume '{volid}'\n"
    assert sorted(p.name for p in host.path("/var/lib/vz/dump").iterdir()) == []


# --- pct restore ---------------------------------------------------------------------------------

def test_restore_brings_back_the_data_and_config_and_drops_what_came_later(host):
    conf = make_ct(host)
    (vol_dir(host, conf["mp0"]) / "before.txt").write_text("before\n")
    (vol_dir(host, conf["mp1"]) / "cache.bin").write_text("not in the backup\n")
    res = ok(backup(host))
    volid = "local:backup/" + archive_of(res).rsplit("/", 1)[1]
    (vol_dir(host, conf["mp0"]) / "after.txt").write_text("after\n")
    res = host.run("pct", "restore", "100", volid)
    assert res.rc == 255 and res.stderr == "CT 100 already exists on node 'pve'\n"
    res = host.run("pct", "restore", "100", volid, "--force", "1")
    assert res.rc == 255 and res.stderr == "can't overwrite running container\n"
    ok(host.run("pct", "stop", "100"))
    res = ok(host.run("pct", "restore", "100", volid, "--force", "1", "--storage", "local"))
    assert res.stdout.startswith(f"recovering backed-up configuration from '{volid}'\n")
    assert f"restoring '{volid}' now..\n" in res.stdout and "merging backed-up and given configuration..\n" in res.stdout
    new = config(host)
    assert new["net0"] == conf["net0"], "the MAC comes back from the archive"
    assert new["mp2"] == "/tank/media,mp=/media" and new["hostname"] == "app"
    assert new["mp0"] != conf["mp0"] and "mp=/data,backup=1" in new["mp0"]
    data = vol_dir(host, new["mp0"])
    assert sorted(p.name for p in data.iterdir() if p.name != "lost+found") == ["before.txt"]
    assert sorted(p.name for p in vol_dir(host, new["mp1"]).iterdir() if p.name != "lost+found") == [], \
        "a volume without backup=1 comes back empty"
    assert not vol_dir(host, conf["mp0"]).exists(), "the old volumes are freed"
    assert (host.path("/tank/media") / "film.mkv").read_text() == "the user's\n", "bind sources are untouched"
    assert not (vol_dir(host, new["rootfs"]) / "etc/vzdump/pct.conf").exists()


def test_restore_to_a_new_vmid_and_errors(host):
    make_ct(host)
    res = ok(backup(host))
    volid = "local:backup/" + archive_of(res).rsplit("/", 1)[1]
    ok(host.run("pct", "restore", "101", volid, "--storage", "local-zfs", "--unique", "1"))
    conf = config(host, 101)
    assert conf["rootfs"].startswith("local-zfs:subvol-101-disk-") and conf["net0"] != config(host)["net0"]
    res = host.run("pct", "restore", "102", TPL)
    assert res.rc == 255 and res.stderr == f"unable to use volume {TPL} - content type needs to be 'backup'\n"
    ok(host.run("pct", "stop", "100"))
    ok(host.run("pct", "set", "100", "--protection", "1"))
    res = host.run("pct", "restore", "100", volid, "--force", "1")
    assert res.rc == 255 and res.stderr == "unable to restore CT 100 - protection mode enabled\n"
