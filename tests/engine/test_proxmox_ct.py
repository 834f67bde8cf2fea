"""ProxmoxCT through the real engine: every option, in-place updates with and without a
restart, recreation that keeps data, adopt, ownership, failures that leave nothing behind."""

import pytest

from sim.testing import clear_faults, set_faults, ssh_run

from .conftest import hosts_config
from .helpers import ct_by_name, ct_config, ct_list, tool_count, tools_since

pytestmark = pytest.mark.engine
STACK = "ct"

FULL = {
    "host": "pve1", "image": "ghcr.io/homefleet/test-app:1.0", "vmid": 300, "hostname": "full-app",
    "cores": 2, "memory": "1G", "swap": 256, "disk": 3,
    "networks": [
        {"bridge": "vmbr0", "ip": "198.51.100.20/24", "gw": "198.51.100.1", "tag": 10, "firewall": True,
         "hwaddr": "BC:24:11:00:00:AA", "mtu": 1400},
        {"bridge": "vmbr1", "ip": "dhcp"},
    ],
    "volumes": [{"path": "/config", "size": 2}],
    "mounts": ["/tank/media:/media:ro", {"source": "/tank/downloads", "path": "/downloads"}],
    "gpu": "intel", "devices": ["/dev/net/tun"],
    "features": {"nesting": True, "keyctl": True},
    "onboot": True, "startup": "order=2,up=30", "tags": ["media", "Test"], "description": "my app\nsecond line",
    "env": {"TZ": "Europe/Berlin", "QUOTED": "it's \"fine\" $(not run)"},
    "entrypoint": "/usr/local/bin/app --serve", "timezone": "Europe/Berlin", "nameserver": "198.51.100.53",
}
CLASSIC = {"host": "pve2", "template": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst", "vmid": 310,
           "memory": 512, "sshPublicKeys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0000000000000000000000000000000000000000000 me@laptop"}


def deploy(project, fleet, apps, check=True):
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": apps})
    return project.pulumi("up", "--yes", stack=STACK, check=check)


@pytest.fixture(scope="module")
def base(fleet, project):
    pve1 = fleet["pve1"]
    # what FULL needs from pve1 beyond a fresh install (preflight checks it): a second bridge
    # and writable bind sources owned by the CT's root (host uid 100000)
    (pve1.state / "sys-class-net" / "vmbr1").mkdir(exist_ok=True)
    (pve1.state / "sys-class-net" / "vmbr1" / "mtu").write_text("1500\n")
    rc, _, err = ssh_run(pve1, ["sh", "-c", "mkdir -p /tank/downloads /tank/extra && "
                                            "chown 100000:100000 /tank/downloads /tank/extra"])
    assert rc == 0, err
    apps = {"full": dict(FULL), "classic": dict(CLASSIC)}
    deploy(project, fleet, apps)
    return apps


def test_every_option_reaches_pct_config(fleet, base):
    conf = ct_config(fleet["pve1"], 300)
    assert conf["hostname"] == "full-app" and conf["cores"] == "2" and conf["memory"] == "1024"
    assert conf["swap"] == "256" and conf["rootfs"].startswith("local-zfs:subvol-300-disk-0") and "size=3G" in conf["rootfs"]
    assert conf["net0"].startswith("name=eth0,bridge=vmbr0,firewall=1,gw=198.51.100.1,host-managed=1,hwaddr=BC:24:11:00:00:AA,ip=198.51.100.20/24,mtu=1400,tag=10")
    assert conf["net1"].startswith("name=eth1,bridge=vmbr1,") and "ip=dhcp" in conf["net1"]
    assert "mp=/config" in conf["mp0"] and conf["mp0"].startswith("local-zfs:subvol-300-disk-")
    assert conf["mp1"] == "/tank/media,mp=/media,ro=1" and conf["mp2"] == "/tank/downloads,mp=/downloads"
    assert conf["dev0"] == "/dev/dri/card0,gid=44" and conf["dev1"] == "/dev/dri/renderD128,gid=104"
    assert conf["dev2"] == "/dev/net/tun"
    assert set(conf["features"].split(",")) == {"keyctl=1", "nesting=1"}
    assert conf["onboot"] == "1" and conf["startup"] == "order=2,up=30"
    assert conf["tags"] == "homefleet;media;test"
    assert conf["description"].startswith("managed-by: homefleet stack=ct app=full\n")
    assert "my app\nsecond line" in conf["description"]
    assert conf["entrypoint"] == "/usr/local/bin/app --serve"
    assert conf["timezone"] == "Europe/Berlin" and conf["nameserver"] == "198.51.100.53"
    env = dict(e.split("=", 1) for e in conf["env"])
    assert env["TZ"] == "Europe/Berlin" and env["QUOTED"] == "it's \"fine\" $(not run)"
    assert "PATH" in env, "the image's env survives: the user's is merged over it"
    assert ct_by_name(fleet["pve1"], "full-app")["status"] == "running"


def test_classic_template_is_downloaded_and_keys_installed(fleet, base):
    conf = ct_config(fleet["pve2"], 310)
    assert conf["ostype"] == "debian" and "env" not in conf and "cmode" not in conf
    assert "host-managed" not in conf["net0"]
    ran = tools_since(fleet["pve2"], 0)
    assert ["pveam", "download", "local", "debian-12-standard_12.7-1_amd64.tar.zst"] in ran
    create = next(argv for argv in ran if argv[:3] == ["pct", "create", "310"])
    keys_path = create[create.index("--ssh-public-keys") + 1]
    rc, _, _ = ssh_run(fleet["pve2"], ["test", "-e", keys_path])
    assert rc != 0, "the uploaded key file is removed after the create"


def test_no_changes_after_create(project, base):
    run = project.pulumi("preview", "--expect-no-changes", stack=STACK)
    assert run.ok, run


def test_live_update_without_restart(fleet, project, base):
    apps = {**base, "full": {**base["full"], "cores": 3, "tags": ["media"], "description": "renamed",
                             "mounts": base["full"]["mounts"] + ["/tank/extra:/extra"]}}
    start = tool_count(fleet["pve1"])
    deploy(project, fleet, apps)
    conf = ct_config(fleet["pve1"], 300)
    assert conf["cores"] == "3" and conf["tags"] == "homefleet;media" and conf["mp3"] == "/tank/extra,mp=/extra"
    assert "renamed" in conf["description"]
    ran = tools_since(fleet["pve1"], start)
    assert not any(a[:2] in (["pct", "shutdown"], ["pct", "start"], ["pct", "reboot"]) for a in ran), ran
    base.update(apps)


def test_env_change_restarts_and_keeps_image_env(fleet, project, base):
    apps = {**base, "full": {**base["full"], "env": {"TZ": "UTC", "NEW": "1"}}}
    start = tool_count(fleet["pve1"])
    run = deploy(project, fleet, apps)
    ran = tools_since(fleet["pve1"], start)
    assert ["pct", "shutdown", "300", "--timeout", "60", "--forceStop", "1"] in ran and ["pct", "start", "300"] in ran
    env = dict(e.split("=", 1) for e in ct_config(fleet["pve1"], 300)["env"])
    assert env["TZ"] == "UTC" and env["NEW"] == "1" and "QUOTED" not in env and "PATH" in env
    assert "restarted CT 300" in run.stdout
    base.update(apps)


def test_pending_change_restarts(fleet, project, base):
    apps = {**base, "full": {**base["full"], "features": {"nesting": True}}}
    start = tool_count(fleet["pve1"])
    deploy(project, fleet, apps)
    ran = tools_since(fleet["pve1"], start)
    assert ["pct", "start", "300"] in ran, "features stay pending on a running CT until a restart"
    assert ct_config(fleet["pve1"], 300)["features"] == "nesting=1"
    rc, out, _ = ssh_run(fleet["pve1"], ["pct", "pending", "300"])
    assert not any(line.startswith(("new ", "del ")) for line in out.splitlines())
    base.update(apps)


def test_stop_and_start_wish(fleet, project, base):
    deploy(project, fleet, {**base, "classic": {**base["classic"], "running": False}})
    assert ct_by_name(fleet["pve2"], "classic")["status"] == "stopped"
    deploy(project, fleet, base)
    assert ct_by_name(fleet["pve2"], "classic")["status"] == "running"


def test_image_upgrade_keeps_the_volume_data_and_the_vmid(fleet, project, base):
    pve1 = fleet["pve1"]
    volume = ct_config(pve1, 300)["mp0"].split(",")[0]
    rc, _, err = ssh_run(pve1, ["sh", "-c", f'echo precious > "$(pvesm path {volume})/photos.db"'])
    assert rc == 0, err
    apps = {**base, "full": {**base["full"], "image": "ghcr.io/homefleet/test-app:2.0"}}
    run = deploy(project, fleet, apps)
    assert "carried over: mp0" in run.stdout
    conf = ct_config(pve1, 300)
    assert "test-app_2.0" in conf["description"]
    rc, out, err = ssh_run(pve1, ["pct", "exec", "300", "--", "cat", "/config/photos.db"])
    assert (rc, out.strip()) == (0, "precious"), err
    assert [r["name"] for r in ct_list(pve1)].count("full-data") == 0, "the holder CT is gone"
    assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok
    base.update(apps)


def test_unprivileged_change_recreates_in_place(fleet, project, base):
    # an OCI CT cannot be privileged (refused at check); a classic one can
    apps = {**base, "classic": {**base["classic"], "unprivileged": False}}
    deploy(project, fleet, apps)
    assert ct_config(fleet["pve2"], 310).get("unprivileged", "0") == "0"  # PVE omits the schema default
    base.update(apps)


def test_privileged_oci_is_refused_at_check(fleet, project, base):
    start = tool_count(fleet["pve1"])
    run = deploy(project, fleet, {**base, "full": {**base["full"], "unprivileged": False}}, check=False)
    assert not run.ok and "cannot create a privileged CT from an OCI image" in run.stdout + run.stderr
    assert tools_since(fleet["pve1"], start) == []


def test_host_change_replaces(fleet, project, base):
    apps = {**base, "classic": {**base["classic"], "host": "pve1"}}
    deploy(project, fleet, apps)
    assert ct_by_name(fleet["pve1"], "classic")["vmid"] == 310
    assert not any(r["name"] == "classic" for r in ct_list(fleet["pve2"]))
    base.update(apps)


def test_drift_of_a_mount_and_a_stop_shows_on_refresh(fleet, project, base):
    pve1 = fleet["pve1"]
    ssh_run(pve1, ["pct", "set", "300", "--delete", "mp3"])
    ssh_run(pve1, ["pct", "shutdown", "300"])
    run = project.pulumi("refresh", "--yes", "--diff", stack=STACK, check=True)
    assert "drift on CT 300: mp3: bind /tank/extra -> /extra -> (absent); status: running -> stopped" in run.stdout, run.stdout
    deploy(project, fleet, base)
    conf = ct_config(pve1, 300)
    assert conf["mp3"] == "/tank/extra,mp=/extra" and ct_by_name(pve1, "full-app")["status"] == "running"


def test_adopt_takes_over_a_hand_made_ct(fleet, project, base):
    pve2 = fleet["pve2"]
    rc, _, err = ssh_run(pve2, ["pct", "create", "400", "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
                                "--hostname", "legacy", "--memory", "256", "--rootfs", "local-zfs:2"])
    assert rc == 0, err
    apps = {**base, "legacy": {"host": "pve2", "template": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
                               "vmid": 400, "adopt": True, "hostname": "legacy", "memory": 768, "disk": 2}}
    deploy(project, fleet, apps)
    conf = ct_config(pve2, 400)
    assert conf["memory"] == "768" and "managed-by: homefleet stack=ct app=legacy" in conf["description"]
    assert "homefleet" in conf["tags"]
    base.update(apps)


def test_a_foreign_ct_on_our_vmid_is_never_touched(fleet, project, base):
    pve2 = fleet["pve2"]
    rc, _, err = ssh_run(pve2, ["pct", "create", "410", "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
                                "--hostname", "theirs", "--rootfs", "local-zfs:2"])
    assert rc == 0, err
    before = ct_config(pve2, 410)
    run = deploy(project, fleet, {**base, "mine": {"host": "pve2", "image": "nginx:1.27", "vmid": 410}}, check=False)
    assert not run.ok and "CT 410 already exists" in run.stdout + run.stderr
    assert ct_config(pve2, 410) == before
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": base})


def test_update_and_delete_refuse_a_ct_whose_marker_is_gone(fleet, project, base):
    pve1 = fleet["pve1"]
    ssh_run(pve1, ["pct", "set", "310", "--tags", "somebody-else"])
    run = deploy(project, fleet, {**base, "classic": {**base["classic"], "memory": 600}}, check=False)
    assert not run.ok and "refusing to update CT 310" in run.stdout + run.stderr
    assert ct_config(pve1, 310)["memory"] == "512"
    run = deploy(project, fleet, {k: v for k, v in base.items() if k != "classic"}, check=False)
    assert not run.ok and "refusing to delete CT 310" in run.stdout + run.stderr
    assert ct_by_name(pve1, "classic")["vmid"] == 310
    ssh_run(pve1, ["pct", "set", "310", "--tags", "homefleet"])
    deploy(project, fleet, base)


def test_a_create_that_fails_halfway_leaves_nothing(fleet, project, base):
    pve2 = fleet["pve2"]
    set_faults(pve2, [{"match": "pct start", "action": "fail", "stderr": "simulated start failure", "times": 1}])
    try:
        run = deploy(project, fleet, {**base, "half": {"host": "pve2", "image": "nginx:1.27", "vmid": 420}}, check=False)
    finally:
        clear_faults(pve2)
    assert not run.ok
    assert "host pve2: creating CT 420 for half failed" in run.stdout + run.stderr
    assert not any(r["vmid"] == 420 for r in ct_list(pve2)), "the partial CT was destroyed"
    deploy(project, fleet, {**base, "half": {"host": "pve2", "image": "nginx:1.27", "vmid": 420}})
    assert ct_by_name(pve2, "half")["status"] == "running"
    base["half"] = {"host": "pve2", "image": "nginx:1.27", "vmid": 420}


def test_concurrent_creates_get_distinct_vmids(fleet, project, base):
    many = {f"many{i}": {"host": "pve2", "image": "nginx:1.27", "memory": 64} for i in range(6)}
    deploy(project, fleet, {**base, **many})
    vmids = [ct_by_name(fleet["pve2"], name)["vmid"] for name in many]
    assert len(set(vmids)) == 6
    base.update(many)


def test_destroy_parks_data_volumes_unless_asked(fleet, project, base):
    run = project.pulumi("destroy", "--yes", stack=STACK)
    assert run.ok, run
    names = {r["name"] for h in fleet.hosts for r in ct_list(h)}
    assert names == {"full-data", "theirs"}, names
    holder = ct_by_name(fleet["pve1"], "full-data")
    volume = ct_config(fleet["pve1"], holder["vmid"])["mp0"].split(",")[0]
    rc, out, _ = ssh_run(fleet["pve1"], ["sh", "-c", f'cat "$(pvesm path {volume})/photos.db"'])
    assert out.strip() == "precious"


def test_deploying_the_app_again_takes_its_parked_data_back(fleet, project, base):
    pve1 = fleet["pve1"]
    deploy(project, fleet, {"full": base["full"]})
    rc, out, err = ssh_run(pve1, ["pct", "exec", "300", "--", "cat", "/config/photos.db"])
    assert (rc, out.strip()) == (0, "precious"), err
    assert not any(r["name"] == "full-data" for r in ct_list(pve1)), "the holder is gone once emptied"
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet),
                                "homefleet:apps": {"full": {**base["full"], "deleteData": True}}})
    project.pulumi("up", "--yes", stack=STACK, check=True)
    project.pulumi("destroy", "--yes", stack=STACK, check=True)
    assert {r["name"] for r in ct_list(pve1)} == set(), "deleteData: true removes the data with the CT"
