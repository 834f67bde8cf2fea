"""The create sequence as a real PVE host needs it (issue 13 items 1, 4, 5, 6), through the
real engine against simulated hosts that fail where PVE fails."""

import fcntl

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


# ---- item 4: `pct resize` and `pveam download` exit 0 when their task fails ----

def test_a_failed_resize_task_fails_the_update_with_pves_message(fleet, project):
    """The resize task waits 10 s for the CT's config lock; held longer (a backup, another
    tool), it fails — and `pct resize` still exits 0. The provider reads the size back."""
    pve1 = fleet["pve1"]
    app = {**APP, "vmid": 410, "disk": 2}
    deploy(project, fleet, {"sized": app})
    with open(pve1.state / "lock" / "pve-config-410.lock", "a") as held:  # /run/lock/lxc on the host
        fcntl.flock(held, fcntl.LOCK_EX)
        run = deploy(project, fleet, {"sized": {**app, "disk": 3}}, check=False)
    assert not run.ok
    out = run.stdout + run.stderr
    assert "can't lock file '/run/lock/lxc/pve-config-410.lock' - got timeout" in out, out
    assert "`pct resize 410 rootfs 3G` did not take effect" in out, out
    assert "size=2G" in ct_config(pve1, 410)["rootfs"]
    deploy(project, fleet, {"sized": {**app, "disk": 3}})
    assert "size=3G" in ct_config(pve1, 410)["rootfs"]


def test_a_failed_template_download_fails_before_the_create(fleet, project):
    pve1 = fleet["pve1"]
    offline = pve1.state / "sim" / "no-internet"
    offline.touch()
    try:
        start = tool_count(pve1)
        run = deploy(project, fleet, {"classic": {"host": "pve1", "vmid": 420,
                                                  "template": "local:vztmpl/alpine-3.22-default_20250617_amd64.tar.xz"}},
                     check=False)
    finally:
        offline.unlink()
    assert not run.ok
    out = run.stdout + run.stderr
    assert "did not store the template" in out and "download failed: command 'wget" in out, out
    assert not any(argv[:2] == ["pct", "create"] for argv in tools_since(pve1, start))



# ---- item 6: every host command runs with LC_ALL=C ----

def test_a_host_in_another_language_is_read_in_english(fleet, project):
    """A host whose /etc/default/locale is German gets coreutils' messages in German; the
    template's read matches stat's English `No such file`. LC_ALL=C on every command keeps
    the messages English: the removed archive is dropped from the state, no refresh error."""
    pve1 = fleet["pve1"]
    deploy(project, fleet, {"lang": {**APP, "vmid": 430}})
    (pve1.state / "locale").write_text("LANG=de_DE.UTF-8\n")
    try:
        rc, _, err = ssh_run(pve1, ["stat", "/var/lib/vz/template/cache/none.tar"])
        assert rc == 1 and "Datei oder Verzeichnis nicht gefunden" in err, err
        sh(pve1, "rm -f /var/lib/vz/template/cache/*.tar")
        run = project.pulumi("refresh", "--yes", stack=STACK)
    finally:
        (pve1.state / "locale").unlink()
    assert run.ok, run
    assert "Datei" not in run.stdout + run.stderr



# ---- item 5: a hostname change reaches the running app ----

def test_hostname_change_restarts_the_ct_so_the_app_gets_the_name(fleet, project):
    """`hostname` is config-only on PVE (Config.pm $LXC_FASTPLUG_OPTIONS): written at once,
    never pending, and the running CT keeps its UTS name until the next start."""
    pve1 = fleet["pve1"]
    app = {**APP, "vmid": 440, "hostname": "first-name"}
    deploy(project, fleet, {"named": app})
    assert sh(pve1, "pct exec 440 -- hostname") == "first-name\n"
    run = deploy(project, fleet, {"named": {**app, "hostname": "second-name"}})
    assert ct_config(pve1, 440)["hostname"] == "second-name"
    assert sh(pve1, "pct pending 440 | grep -c '^new ' || true") == "0\n"
    assert sh(pve1, "pct exec 440 -- hostname") == "second-name\n", "the running app still has the old name"
    assert "restarted CT 440" in run.stdout
