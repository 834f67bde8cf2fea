"""The create sequence as a real PVE host needs it (issue 13 items 1, 4, 5, 6), through the
real engine against simulated hosts that fail where PVE fails."""

import fcntl
import os
import stat

import pytest

from sim.engine import LocalProject
from sim.testing import remove_program, restore_programs, running_fleet, ssh_run

from .conftest import hosts_config
from .helpers import command_count, ct_config, tool_count, tools_since

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


# ---- preflight: what the host lacks is told before anything changes ----

def refused(project, fleet, app: dict, *needles: str):
    """`up` fails naming the host, the missing piece and the fix; no CT was created."""
    pve1 = fleet["pve1"]
    start = tool_count(pve1)
    run = deploy(project, fleet, {"pre": {"host": "pve1", "vmid": 460, **app}}, check=False)
    assert not run.ok
    out = run.stdout + run.stderr
    assert "host pve1:" in out, out
    for needle in needles:
        assert needle in out, out
    ran = tools_since(pve1, start)
    assert not any(argv[:2] in (["pct", "create"], ["pct", "set"], ["pct", "start"]) for argv in ran), ran
    rc, _, _ = ssh_run(pve1, ["pct", "config", "460"])
    assert rc != 0, "a CT was left behind"
    return ran


def test_preflight_skopeo_missing(fleet, project):
    pve1 = fleet["pve1"]
    remove_program(pve1, "skopeo")
    try:
        ran = refused(project, fleet, {"image": "docker.io/library/busybox:1.36"},
                      "skopeo is not installed (PVE only recommends it) — apt install skopeo")
    finally:
        restore_programs(pve1)
    assert ran == [], "nothing ran: not even pvesm path"


def _storage_cfg(host, old: str, new: str):
    path = host.state / "etc-pve" / "storage.cfg"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_preflight_template_storage_without_vztmpl(fleet, project):
    pve1 = fleet["pve1"]
    _storage_cfg(pve1, "content vztmpl,iso,backup,rootdir,images", "content iso,backup,rootdir,images")
    try:
        refused(project, fleet, {"image": "docker.io/library/busybox:1.36"},
                "storage 'local' (templateStorage) does not allow templates (content type 'vztmpl')",
                "pvesm set local --content")
    finally:
        _storage_cfg(pve1, "content iso,backup,rootdir,images", "content vztmpl,iso,backup,rootdir,images")


def test_preflight_storage_without_rootdir(fleet, project):
    pve1 = fleet["pve1"]
    _storage_cfg(pve1, "\tpool rpool/data\n\tcontent rootdir,images", "\tpool rpool/data\n\tcontent images")
    try:
        refused(project, fleet, APP, "storage 'local-zfs' (storage) does not allow container disks "
                                     "(content type 'rootdir')", "pvesm set local-zfs --content")
    finally:
        _storage_cfg(pve1, "\tpool rpool/data\n\tcontent images", "\tpool rpool/data\n\tcontent rootdir,images")


def test_preflight_bridge_missing(fleet, project):
    refused(project, fleet, {**APP, "networks": [{"bridge": "vmbr0"}, {"bridge": "vmbr7"}]},
            "bridge 'vmbr7' (networks[1].bridge) does not exist on this host")


def test_preflight_gpu_node_missing(fleet, project):
    pve1 = fleet["pve1"]
    node = pve1.state / "dev-dri" / "renderD128"
    node.unlink()
    try:
        refused(project, fleet, {**APP, "gpu": "intel"},
                "device /dev/dri/renderD128 (devices: /dev/dri/renderD128) does not exist on this host")
    finally:
        os.mknod(node, 0o660 | stat.S_IFCHR, os.makedev(226, 128))


def test_preflight_bind_source_missing(fleet, project):
    refused(project, fleet, {**APP, "mounts": ["/tank/nope:/data:ro"]},
            "bind mount source /tank/nope (mounts: /tank/nope:/data) does not exist on this host",
            "mkdir -p /tank/nope")


def test_preflight_writable_bind_source_owned_by_host_root(fleet, project):
    refused(project, fleet, {**APP, "mounts": ["/tank/media:/media"]},
            "bind mount source /tank/media (mounts: /tank/media:/media) is owned by a uid the unprivileged CT "
            "cannot write", "chown 100000:100000 /tank/media")


def test_no_change_up_sends_no_command(fleet, project):
    """The checks ride in the scripts that change a host: an up with nothing to do sends none."""
    pve1 = fleet["pve1"]
    deploy(project, fleet, {"quiet": {**APP, "vmid": 470, "mounts": ["/tank/media:/media:ro"]}})
    before = command_count(pve1)
    deploy(project, fleet, {"quiet": {**APP, "vmid": 470, "mounts": ["/tank/media:/media:ro"]}})
    assert command_count(pve1) == before


def test_preflight_on_update_a_new_bind_mount_whose_source_is_missing(fleet, project):
    pve1 = fleet["pve1"]
    app = {**APP, "vmid": 480}
    deploy(project, fleet, {"grow": app})
    start = tool_count(pve1)
    run = deploy(project, fleet, {"grow": {**app, "mounts": ["/tank/later:/later:ro"]}}, check=False)
    assert not run.ok
    assert "bind mount source /tank/later (mounts: /tank/later:/later) does not exist on this host" in run.stdout
    assert not any(argv[:2] == ["pct", "set"] for argv in tools_since(pve1, start))
    assert "mp0" not in ct_config(pve1, 480)
