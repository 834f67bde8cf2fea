"""Issue 15 stack keys (keepBackups, rollback, backupStorage) -> ProxmoxCT inputs
(backup_storage, keep_backups, rollback): defaults, the host default, the app's own value,
for image apps and compose services alike."""

import pytest

from homefleet.config import load
from homefleet.errors import ConfigError
from homefleet.plan import make_plan

NET = {"cidr": "192.0.2.0/24", "gateway": "192.0.2.1", "range": "192.0.2.100-192.0.2.120"}


def plan_of(apps, **host):
    raw = {"hosts": {"pve1": {"kind": "proxmox", "address": "127.0.0.1", "composeNetwork": NET, **host}},
           "apps": apps}
    stack, catalog = load("t", raw)
    return {ct.name: ct.props for ct in make_plan("t", stack, catalog).cts}


def test_defaults_back_up_to_local_keep_three_and_roll_back():
    props = plan_of({"web": {"host": "pve1", "image": "nginx:1.27"}})["web"]
    assert (props["backup_storage"], props["keep_backups"], props["rollback"]) == ("local", 3, True)


def test_the_host_sets_storage_and_the_default_count_an_app_overrides_it():
    cts = plan_of({"web": {"host": "pve1", "image": "nginx:1.27"},
                   "db": {"host": "pve1", "image": "postgres:17.6", "keepBackups": 7, "rollback": False}},
                  backupStorage="nas-backups", keepBackups=2)
    assert {k: cts["web"][k] for k in ("backup_storage", "keep_backups", "rollback")} == \
        {"backup_storage": "nas-backups", "keep_backups": 2, "rollback": True}
    assert {k: cts["db"][k] for k in ("backup_storage", "keep_backups", "rollback")} == \
        {"backup_storage": "nas-backups", "keep_backups": 7, "rollback": False}


def test_every_service_of_a_compose_app_gets_the_app_s_keys():
    cts = plan_of({"immich": {"host": "pve1", "package": "immich", "keepBackups": 1, "rollback": False}},
                  backupStorage="pbs1")
    assert len(cts) == 4
    for props in cts.values():
        assert (props["backup_storage"], props["keep_backups"], props["rollback"]) == ("pbs1", 1, False)


@pytest.mark.parametrize("host, app, key", [
    ({"backupStorage": "local-"}, {}, "homefleet:hosts.pve1.backupStorage"),
    ({"backupStorage": "a"}, {}, "homefleet:hosts.pve1.backupStorage"),
    ({"backupStorage": "local;rm"}, {}, "homefleet:hosts.pve1.backupStorage"),
    ({"keepBackups": 0}, {}, "homefleet:hosts.pve1.keepBackups"),
    ({}, {"keepBackups": -1}, "homefleet:apps.web.keepBackups"),
    ({}, {"rollback": "sometimes"}, "homefleet:apps.web.rollback"),
])
def test_bad_values_name_the_file_the_key_and_the_fix(host, app, key):
    with pytest.raises(ConfigError) as exc:
        plan_of({"web": {"host": "pve1", "image": "nginx:1.27", **app}}, **host)
    [problem] = exc.value.problems
    assert problem.startswith(f"stacks/Pulumi.t.yaml: {key}: ")
    assert "Write " in problem, problem


@pytest.mark.parametrize("keys", [{"backupStorage": "local"}, {"backupStorage": "local", "keepBackups": 2}])
def test_backup_storage_on_a_truenas_host_is_refused(keys):
    raw = {"hosts": {"nas1": {"kind": "truenas", "address": "127.0.0.1", "pool": "tank", **keys}}, "apps": {}}
    with pytest.raises(ConfigError) as exc:
        load("t", raw)
    assert exc.value.problems == ["stacks/Pulumi.t.yaml: homefleet:hosts.nas1: `backupStorage` is for Proxmox hosts "
                                  "(where homefleet backs CTs up with vzdump); remove it from this TrueNAS host "
                                  "(TrueNAS apps: `snapshotDatasets`, whose snapshots `keepBackups` counts, "
                                  "docs/truenas.md)"]


def test_keep_backups_on_truenas_counts_the_snapshots_an_app_overrides_the_host(tmp_path):
    from homefleet.plan_truenas import plan_truenas
    (tmp_path / "app.yml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    hosts = {"nas1": {"kind": "truenas", "address": "127.0.0.1", "pool": "tank", "keepBackups": 5, "healthSettle": 2}}
    apps = {"a": {"host": "nas1", "compose": "app.yml", "snapshotDatasets": True},
            "b": {"host": "nas1", "compose": "app.yml", "snapshotDatasets": True, "keepBackups": 1,
                  "healthSettle": 9}}
    stack, catalog = load("t", {"hosts": hosts, "apps": apps}, project_dir=str(tmp_path))
    plans = {p.app: p.props for p in plan_truenas("t", stack, make_plan("t", stack, catalog).targets,
                                                  project_dir=str(tmp_path))}
    assert [(plans[a]["keep_backups"], plans[a]["health_settle"]) for a in ("a", "b")] == [(5, 2), (1, 9)]


def test_the_defaults_agree_across_the_model_the_provider_and_the_pr_summary():
    """The model never imports providers: the defaults are written three times and must agree."""
    from homefleet import preview_summary
    from homefleet.stack import App, Host
    from providers import upgrade_inputs
    assert preview_summary.UPGRADE_DEFAULTS == upgrade_inputs.DEFAULTS
    host = Host(kind="proxmox", address="x")
    assert upgrade_inputs.DEFAULTS["backup_storage"] == host.backupStorage
    assert upgrade_inputs.DEFAULTS["keep_backups"] == host.keepBackups
    assert upgrade_inputs.DEFAULTS["rollback"] == App(host="x", image="nginx:1").rollback
    timeout = App.model_fields.get("healthTimeout")  # hh's key; 300 until it lands
    assert upgrade_inputs.DEFAULTS["health_timeout"] == (timeout.default if timeout else 300)
    assert upgrade_inputs.DEFAULTS["health_settle"] == host.healthSettle


def test_health_settle_comes_from_the_host_and_an_app_overrides_it():
    cts = plan_of({"web": {"host": "pve1", "image": "nginx:1.27"},
                   "db": {"host": "pve1", "image": "postgres:17.6", "healthSettle": 30}}, healthSettle=2)
    assert (cts["web"]["health_settle"], cts["db"]["health_settle"]) == (2, 30)
    assert plan_of({"web": {"host": "pve1", "image": "nginx:1.27"}})["web"]["health_settle"] == 5


def test_a_negative_health_settle_is_refused_with_its_key():
    with pytest.raises(ConfigError) as err:
        plan_of({"web": {"host": "pve1", "image": "nginx:1.27", "healthSettle": -1}})
    assert "healthSettle" in str(err.value)
