"""providers/upgrade_inputs.py: the safe-upgrade inputs' defaults, changes, checks, and what a
diff logs for `pulumi preview` (pure: no host)."""

import pytest

from providers import upgrade_inputs
from providers.proxmox_ct import ProxmoxCTProvider

HOST = {"name": "pve1", "address": "127.0.0.1", "port": 22, "user": "root"}


def test_a_missing_value_is_its_default():
    assert upgrade_inputs.settings({}) == {"backup_storage": "local", "keep_backups": 3, "rollback": True,
                                           "health_timeout": 300, "health_settle": 5}
    assert upgrade_inputs.changed({}, {"backup_storage": "local", "keep_backups": 3, "rollback": True}) == []
    assert upgrade_inputs.changed({}, {"rollback": False, "keep_backups": 3}) == ["rollback"]
    assert upgrade_inputs.changed({"keep_backups": 2}, {}) == ["keep_backups"]


def test_the_provider_counts_a_real_change_only():
    old = {"host": HOST, "stack": "s", "app": "a", "hostname": "a", "rootfs_storage": "local-zfs", "template": "t",
           "observed": {}}
    assert "rollback" not in ProxmoxCTProvider.changed(old, {**old, "rollback": True})
    assert "rollback" in ProxmoxCTProvider.changed(old, {**old, "rollback": False})


@pytest.mark.parametrize("key, value", [("backup_storage", "local;reboot"), ("backup_storage", "a"),
                                        ("backup_storage", "x" * 65), ("keep_backups", 0), ("keep_backups", 2.5),
                                        ("keep_backups", True), ("rollback", "no")])
def test_check_refuses_what_the_stack_model_refuses(key, value):
    news = {"host": HOST, "stack": "s", "app": "a", key: value}
    failures = ProxmoxCTProvider().check({}, news).failures
    assert [f.property for f in failures] == [key], failures


def test_check_passes_good_and_unknown_values():
    for news in ({"backup_storage": "nas-backup.1", "keep_backups": 1000, "rollback": False},
                 {"backup_storage": upgrade_inputs.UNKNOWN, "keep_backups": upgrade_inputs.UNKNOWN}):
        assert ProxmoxCTProvider().check({}, {"host": HOST, "stack": "s", "app": "a", **news}).failures == []


def test_the_plan_text():
    assert upgrade_inputs.plan_text({}, "CT 7") == "backup to local, then recreate CT 7, health gate 300 s"
    assert upgrade_inputs.plan_text({"backup_storage": "pbs", "health_timeout": 60, "rollback": False}, "CT 7") == \
        "backup to pbs, then recreate CT 7, health gate 60 s, rollback off"
    assert upgrade_inputs.plan_text({"running": False}, "CT 7") == \
        "backup to local, then recreate CT 7, no health gate (not running)"


def old_ct(**extra) -> dict:
    return {"host": HOST, "app": "web", "vmid": 601, "template": "local:vztmpl/a.tar", "template_kind": "oci",
            "unprivileged": True, "rootfs_storage": "local-zfs", **extra}


def test_a_diff_says_the_plan_of_an_image_upgrade_and_the_bind_mounts(capsys):
    mounts = [{"source": "/tank/media", "path": "/media", "read_only": True}]
    upgrade_inputs.say_plan(old_ct(), {**old_ct(), "template": upgrade_inputs.UNKNOWN, "mounts": mounts})
    err = capsys.readouterr().err.splitlines()
    assert err == ["[homefleet pve1:web] image upgrade of CT 601: backup to local, then recreate CT 601, health gate 300 s",
                   "[homefleet pve1:web] warning: bind mounts are not in the backup of CT 601: /tank/media (at /media); "
                   "they stay on the host as they are (back them up yourself)"]


@pytest.mark.parametrize("news", [
    {},                                           # nothing recreates
    {"memory": 1024},                             # an in-place update
    {"vmid": 610, "template": "local:vztmpl/b.tar"},  # a replace (new vmid): no backup
    {"host": {**HOST, "name": "pve2"}, "template": "local:vztmpl/b.tar"},  # a move
])
def test_a_diff_says_nothing_when_nothing_is_recreated_in_place(capsys, news):
    upgrade_inputs.say_plan(old_ct(), {**old_ct(), **news})
    assert capsys.readouterr().err == ""


def test_an_unprivileged_change_is_a_recreate(capsys):
    upgrade_inputs.say_plan(old_ct(template_kind="classic", unprivileged=False),
                            {**old_ct(template_kind="classic"), "unprivileged": True, "rollback": False})
    assert capsys.readouterr().err == ("[homefleet pve1:web] recreate of CT 601: backup to local, then recreate CT 601, "
                                       "health gate 300 s, rollback off\n")


def test_a_volume_that_changes_slot_is_a_recreate(capsys):
    vols = [{"path": "/a", "size": 1}, {"path": "/b", "size": 1}]
    upgrade_inputs.say_plan(old_ct(volumes=vols), {**old_ct(), "volumes": vols[1:]})
    assert capsys.readouterr().err.startswith("[homefleet pve1:web] recreate of CT 601: backup to local")
    upgrade_inputs.say_plan(old_ct(volumes=vols), {**old_ct(), "volumes": vols[:1]})  # the last one removed: in place
    assert capsys.readouterr().err == ""


def test_a_changed_health_check_alone_is_an_update_so_the_state_and_refresh_use_it():
    """A package's or compose file's new `health:`/`healthcheck:` changes nothing on the CT, but
    refresh and the next gate read the check from the state: it must be recorded."""
    from homefleet.config import load
    from homefleet.plan import make_plan
    from providers.ct_data import view_spec
    from providers.hosts import ctview
    raw = {"hosts": {"pve1": {"kind": "proxmox", "address": "127.0.0.1"}},
           "apps": {"web": {"host": "pve1", "image": "nginx:1.27", "ports": [{"port": 80}]}}}
    stack, catalog = load("t", raw)
    props = next(ct.props for ct in make_plan("t", stack, catalog).cts if ct.name == "web")
    olds = {**props, "observed": ctview.from_spec(view_spec(props), {})}
    assert ProxmoxCTProvider.changed(olds, dict(props)) == []
    assert ProxmoxCTProvider.changed(olds, {**props, "health": {"kind": "http", "port": 80, "path": "/health"}}) \
        == ["health"]
