"""providers/hosts/vzdump.py: notes, argv, planning (flags, mode) and the pruning choice."""

import json

import pytest

from providers.hosts import vzdump

STD = "local:backup/vzdump-lxc-{vmid}-2026_01_0{day}-10_00_00.tar.zst"


def entry(vmid, day, notes, protected=False):
    return {"volid": STD.format(vmid=vmid, day=day), "content": "backup", "format": "tar.zst", "size": 1000 + day,
            "ctime": 1767261600 + day * 86400, "vmid": vmid, "subtype": "lxc",
            **({"notes": notes} if notes is not None else {}), **({"protected": 1} if protected else {})}


def test_notes_round_trip_and_template_escaping():
    notes = vzdump.notes_line("dev", "jellyfin", 120, "image-upgrade")
    assert notes == "homefleet dev/jellyfin vmid 120 before image-upgrade"
    assert vzdump.parse_notes(notes) == {"stack": "dev", "app": "jellyfin", "vmid": 120, "reason": "image-upgrade"}
    assert vzdump.parse_notes("homefleet dev/jellyfin vmid x before y") is None
    assert vzdump.parse_notes(None) is None
    assert vzdump.notes_template("a\\b") == "a\\\\b"
    with pytest.raises(ValueError):
        vzdump.notes_template("a {{vmid}}")
    with pytest.raises(ValueError):
        vzdump.notes_template("a\nb")


def test_backup_argv_never_prunes_and_never_hits_the_storage_limit():
    argv = vzdump.backup_argv(120, "local", "stop", "homefleet dev/a vmid 120 before x")
    assert argv == ["vzdump", "120", "--storage", "local", "--mode", "stop", "--compress", "zstd",
                    "--notes-template", "homefleet dev/a vmid 120 before x", "--prune-backups", "keep-all=1",
                    "--remove", "0"]


def test_prune_keeps_newest_of_this_app_only():
    backups = [entry(120, d, "homefleet dev/app vmid 120 before image-upgrade") for d in range(1, 6)]
    backups += [entry(120, 7, None),                                          # the user's own vzdump of the CT
                entry(120, 8, "weekly"),
                entry(121, 6, "homefleet dev/other vmid 121 before image-upgrade"),
                entry(120, 9, "homefleet prod/app vmid 120 before image-upgrade"),   # another stack
                entry(122, 1, "homefleet dev/app vmid 120 before image-upgrade"),   # note does not match the name
                entry(120, 6, "homefleet dev/app vmid 120 before x", protected=True)]
    doomed = vzdump.prune_candidates(backups, "dev", "app", 3)
    assert doomed == [STD.format(vmid=120, day=2), STD.format(vmid=120, day=1)]
    assert vzdump.prune_candidates(backups, "dev", "app", 0) == [STD.format(vmid=120, day=d) for d in (4, 3, 2, 1)], \
        "at least one is always kept"


def test_parse_list_reads_pvesh_json():
    text = json.dumps([entry(120, 1, "homefleet dev/app vmid 120 before x"), {"volid": "local:iso/x.iso",
                                                                               "content": "iso"}])
    items = vzdump.parse_list(text)
    assert [i["volid"] for i in items] == [STD.format(vmid=120, day=1)] and items[0]["size"] == 1001
    assert vzdump.parse_list("") == []


def test_missing_flags_only_for_volumes_the_stack_wants_backed_up():
    config = {"rootfs": "local-zfs:subvol-120-disk-0,size=4G",
              "mp0": "local-zfs:subvol-120-disk-1,mp=/data,size=2G",
              "mp1": "local-zfs:subvol-120-disk-2,mp=/cache,size=8G",
              "mp2": "local-zfs:subvol-120-disk-3,mp=/db,backup=1,size=1G",
              "mp3": "/tank/media,mp=/media"}
    spec = {"volumes": [{"path": "/data"}, {"path": "/cache", "backup": False}, {"path": "/db"}]}
    flags = vzdump.missing_flags(config, spec)
    assert flags == {"mp0": "local-zfs:subvol-120-disk-1,mp=/data,size=2G,backup=1"}
    vols = vzdump.backed_volumes(config, flags)
    assert vols == ["local-zfs:subvol-120-disk-0", "local-zfs:subvol-120-disk-1", "local-zfs:subvol-120-disk-3"]
    assert vzdump.choose_mode(vols, {"local-zfs": "zfspool"}) == "snapshot"
    assert vzdump.choose_mode(vols + ["local:120/vm-120-disk-4.raw"], {"local-zfs": "zfspool", "local": "dir"}) == "stop"


def test_storages_and_archive_volid_parsers():
    status = ("Name             Type     Status           Total            Used       Available        %\n"
              "local             dir     active        98497780        12345678        81097008   12.53%\n"
              "local-zfs     zfspool     active       100000000         1000000        99000000    1.00%\n")
    assert vzdump.parse_storages(status) == {"local": "dir", "local-zfs": "zfspool"}
    out = "INFO: Starting Backup of VM 120 (lxc)\nINFO: creating vzdump archive " \
          "'/var/lib/vz/dump/vzdump-lxc-120-2026_01_01-10_00_00.tar.zst'\nINFO: Backup job finished successfully\n"
    assert vzdump.archive_volid(out, "local") == "local:backup/vzdump-lxc-120-2026_01_01-10_00_00.tar.zst"
    assert vzdump.archive_volid("", "local") is None


def test_backup_script_checks_before_it_changes_anything():
    argv = vzdump.backup_script(120, "backups", "stop", "homefleet dev/app vmid 120 before x",
                                {"mp0": "local:120/vm-120-disk-1.raw,mp=/data,backup=1"}, True, 2048)
    body = argv[2]
    checks_end = body.index('test "$bad" = 0 || exit 1')
    assert body.index("(backupStorage) does not exist on this host") < checks_end
    assert body.index("(backupStorage) does not allow backups") < checks_end
    assert body.index("test \"$avail\" -ge 2048") < checks_end
    assert checks_end < body.index("pct shutdown 120") < body.index("pct set 120 --mp0") < body.index("vzdump 120") \
        < body.index("pct start 120")


def test_restore_options_put_each_volume_on_its_storage_and_binds_after():
    spec = {"rootfs_storage": "local-zfs", "rootfs_size": 4,
            "volumes": [{"path": "/data", "size": 2, "storage": "tank"}],
            "mounts": [{"source": "/tank/media", "path": "/media", "read_only": True}]}
    options, post = vzdump.restore_options(spec)
    assert options == {"rootfs": "local-zfs:4", "mp0": "tank:2,mp=/data,backup=1"}
    assert post == {"mp1": "/tank/media,mp=/media,ro=1"}
    body = vzdump.restore_script(120, "local:backup/vzdump-lxc-120-2026_01_01-10_00_00.tar.zst", options, post,
                                 True, True)[2]
    assert body.index("pct stop 120") < body.index("pct restore 120 local:backup/vzdump-lxc-120-") \
        < body.index("pct set 120 --mp1") < body.index("pct start 120")
    assert "--force 1 --rootfs local-zfs:4 --mp0 tank:2,mp=/data,backup=1" in body
