"""The fake `pct`: grammar, errors (message, stream, exit code), config format, pending
semantics, lifecycle, destroy, move-volume, exec and concurrency. Tools run as subprocesses
against a throw-away host (SIM_ROOT/SIM_STATE in tmp_path)."""

from __future__ import annotations

import fcntl
import re

import pytest

from sim.pve.pveam import template_bytes
from sim.pve.testkit import ToolHost

DEBIAN = "debian-12-standard_12.7-1_amd64.tar.zst"
TPL = f"local:vztmpl/{DEBIAN}"
USAGE_CREATE = "pct create <vmid> <ostemplate> [OPTIONS]\n"
HWADDR = r"BC:24:11:[0-9A-F]{2}:[0-9A-F]{2}:[0-9A-F]{2}"


@pytest.fixture
def host(tmp_path) -> ToolHost:
    h = ToolHost(tmp_path)
    h.template_cache.mkdir(parents=True)
    (h.template_cache / DEBIAN).write_bytes(template_bytes(DEBIAN))
    return h


def create(host: ToolHost, vmid: int = 100, *extra: str):
    res = host.run("pct", "create", str(vmid), TPL, *extra)
    assert res.rc == 0, res.stderr
    return res


def zfs(host: ToolHost, name: str):
    return host.state / "sim" / "zfs" / "rpool" / "data" / name


def zfs_names(host: ToolHost) -> list[str]:
    folder = host.state / "sim" / "zfs" / "rpool" / "data"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def mask_hw(text: str) -> str:
    return re.sub(HWADDR, "BC:24:11:XX:XX:XX", text)


# --- grammar and parameter errors -------------------------------------------------------------

def test_vmid_below_range_is_a_parameter_error(host):
    res = host.run("pct", "create", "50", TPL)
    assert res.rc == 255
    assert res.stdout == ""
    assert res.stderr == ("400 Parameter verification failed.\n"
                          "vmid: invalid format - value does not look like a valid VM ID\n\n"
                          + USAGE_CREATE)


def test_vmid_not_an_integer(host):
    res = host.run("pct", "config", "abc")
    assert res.rc == 255
    assert res.stderr == ("400 Parameter verification failed.\n"
                          "vmid: type check ('integer') failed - got 'abc'\n"
                          "pct config <vmid> [OPTIONS]\n")


def test_unknown_option(host):
    res = host.run("pct", "create", "100", TPL, "--foo", "1")
    assert (res.rc, res.stdout) == (255, "")
    assert res.stderr == "Unknown option: foo\n400 unable to parse option\n" + USAGE_CREATE


def test_stop_has_no_timeout_option(host):
    create(host)
    res = host.run("pct", "stop", "100", "--timeout", "30")
    assert res.rc == 255
    assert res.stderr == "Unknown option: timeout\n400 unable to parse option\npct stop <vmid> [OPTIONS]\n"


def test_not_enough_and_too_many_arguments(host):
    res = host.run("pct", "create", "100")
    assert (res.rc, res.stderr) == (255, "400 not enough arguments\n" + USAGE_CREATE)
    res = host.run("pct", "status", "100", "extra")
    assert (res.rc, res.stderr) == (255, "400 too many arguments\npct status <vmid> [OPTIONS]\n")


def test_several_parameter_errors_are_listed(host):
    res = host.run("pct", "create", "100", TPL, "--memory", "8", "--ostype", "windows",
                   "--cores", "x")
    assert res.rc == 255
    assert res.stderr == (
        "400 Parameter verification failed.\n"
        "cores: type check ('integer') failed - got 'x'\n"
        "memory: value must have a minimum value of 16\n"
        "ostype: value 'windows' does not have a value in the enumeration 'debian, devuan, "
        "ubuntu, centos, fedora, opensuse, archlinux, alpine, gentoo, nixos, unmanaged'\n"
        + USAGE_CREATE)
    assert not (host.conf_dir / "100.conf").exists()


def test_property_string_error(host):
    res = host.run("pct", "create", "100", TPL, "--net0", "bridge=vmbr0,ip=dhcp")
    assert res.rc == 255
    assert res.stderr == ("400 Parameter verification failed.\n"
                          "net0: invalid format - format error\n"
                          "net0.name: property is missing and it is not optional\n\n"
                          + USAGE_CREATE)


def test_boolean_forms_and_repeated_option_keeps_last(host):
    create(host, 100, "--onboot", "yes", "--protection", "--memory", "256", "--memory", "1024",
           "--env", "A=1", "--env", "B=2", "--start", "0")
    conf = host.conf_text(100)
    assert "onboot: 1\n" in conf and "protection: 1\n" in conf and "memory: 1024\n" in conf
    assert "lxc.environment.runtime: B=2\n" in conf and "A=1" not in conf


# --- create ----------------------------------------------------------------------------------

def test_create_classic_template_defaults(host):
    res = create(host, 100, "--net0", "name=eth0,bridge=vmbr0,ip=dhcp", "--tags", "Web;db,web x")
    assert res.stdout.splitlines()[0].startswith("Formatting '")
    assert res.stdout.splitlines()[1:] == [
        f"extracting archive '{host.template_cache / DEBIAN}'",
        f"Total bytes read: {(host.template_cache / DEBIAN).stat().st_size} (simulated)",
        "Detected container architecture: amd64",
    ]
    assert res.stderr == ""
    assert mask_hw(host.conf_text(100)) == (
        "arch: amd64\n"
        "hostname: CT100\n"
        "memory: 512\n"
        "net0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:XX:XX:XX,ip=dhcp,type=veth\n"
        "ostype: debian\n"
        "rootfs: local:100/vm-100-disk-0.raw,size=4G\n"
        "swap: 512\n"
        "tags: db;web;x\n"
        "unprivileged: 1\n")
    raw = host.path("/var/lib/vz/images/100/vm-100-disk-0.raw")
    assert raw.is_dir() and (raw / "etc" / "os-release").is_file()
    path = host.run("pvesm", "path", "local:100/vm-100-disk-0.raw")
    assert (path.rc, path.stdout) == (0, f"{raw}\n")


def test_create_bare_rootfs_size_uses_storage_option(host):
    create(host, 100, "--storage", "local-zfs", "--rootfs", "8", "--mp0", "local-zfs:0.5,mp=/data,backup=1")
    conf = host.conf_text(100)
    assert "rootfs: local-zfs:subvol-100-disk-0,size=8G\n" in conf
    assert "mp0: local-zfs:subvol-100-disk-1,mp=/data,backup=1,size=512M\n" in conf
    assert zfs(host, "subvol-100-disk-0").is_dir() and zfs(host, "subvol-100-disk-1").is_dir()


def test_create_existing_vmid_fails_before_the_worker(host):
    create(host)
    res = host.run("pct", "create", "100", TPL)
    assert (res.rc, res.stdout, res.stderr) == (255, "", "CT 100 already exists on node 'pve'\n")


def test_create_missing_template(host):
    res = host.run("pct", "create", "100", "local:vztmpl/nope.tar", "--rootfs", "local-zfs:1")
    assert res.rc == 255
    assert res.stdout == "can't find file 'local:vztmpl/nope.tar'\n"
    assert res.stderr == "unable to create CT 100 - can't find file 'local:vztmpl/nope.tar'\n"
    assert not (host.conf_dir / "100.conf").exists()
    assert zfs_names(host) == []


def test_create_mount_points_without_rootfs(host):
    res = host.run("pct", "create", "100", TPL, "--mp0", "local-zfs:1,mp=/data")
    assert (res.rc, res.stderr) == (255, "mount points configured, but 'rootfs' not set - aborting\n")


def test_create_storage_errors(host):
    host.path("/etc/pve").mkdir(parents=True, exist_ok=True)
    host.path("/etc/pve/storage.cfg").write_text(
        "dir: local\n\tpath /var/lib/vz\n\tcontent vztmpl,iso\n\n"
        "zfspool: off\n\tpool rpool/data\n\tcontent rootdir\n\tdisable\n")
    res = host.run("pct", "create", "100", TPL)
    assert res.rc == 255
    assert res.stderr == ("400 Parameter verification failed.\n"
                          "storage: storage 'local' does not support container directories\n"
                          + USAGE_CREATE)
    res = host.run("pct", "create", "100", TPL, "--rootfs", "nope:4")
    assert (res.rc, res.stderr) == (255, "storage 'nope' does not exist\n")
    res = host.run("pct", "create", "100", TPL, "--rootfs", "off:4")
    assert (res.rc, res.stderr) == (255, "storage 'off' is disabled\n")


def test_create_unknown_distribution_cleans_up(host):
    name = "foobar-1.0-default_amd64.tar.xz"
    (host.template_cache / name).write_bytes(template_bytes(name))
    res = host.run("pct", "create", "100", f"local:vztmpl/{name}", "--rootfs", "local-zfs:1")
    assert res.rc == 255
    assert res.stderr == "unable to create CT 100 - unable to detect OS distribution\n"
    assert not (host.conf_dir / "100.conf").exists()
    assert not zfs(host, "subvol-100-disk-0").exists()


def test_create_with_start(host):
    create(host, 100, "--start", "1")
    assert host.run("pct", "status", "100").stdout == "status: running\n"


# --- config format -----------------------------------------------------------------------------

def test_config_output_bytes_env_nul_and_encoded_description(host):
    create(host, 100, "--rootfs", "local-zfs:2", "--description", "Media server\nport: 8096 (100%)")
    conf_path = host.conf_dir / "100.conf"
    text = conf_path.read_text()
    assert text.startswith("#Media server\n#port%3A 8096 (100%25)\narch: amd64\n")
    # the client's env path: rewrite only the lxc.environment.runtime lines
    conf_path.write_text(text + "lxc.environment.runtime: PATH=/usr/bin:/bin\n"
                                "lxc.environment.runtime: GREETING=hello world\n"
                                "lxc.init.cwd = /srv\n")
    res = host.run("pct", "config", "100")
    assert res.rc == 0
    assert res.stdout_bytes == (
        b"arch: amd64\n"
        b"description: Media server%0Aport%3A 8096 (100%25)%0A\n"
        b"env: PATH=/usr/bin:/bin\x00GREETING=hello world\n"
        b"hostname: CT100\n"
        b"memory: 512\n"
        b"ostype: debian\n"
        b"rootfs: local-zfs:subvol-100-disk-0,size=2G\n"
        b"swap: 512\n"
        b"unprivileged: 1\n"
        b"lxc.init.cwd: /srv\n")
    # a write by the tools keeps env as runtime lines, after the keys and before other lxc.*
    assert host.run("pct", "set", "100", "--cores", "2").rc == 0
    assert host.conf_text(100).endswith(
        "unprivileged: 1\n"
        "lxc.environment.runtime: PATH=/usr/bin:/bin\n"
        "lxc.environment.runtime: GREETING=hello world\n"
        "lxc.init.cwd: /srv\n")


def test_config_fails_its_result_verification_on_an_env_name_pve_cannot_hold(host):
    """pve-common RESTHandler.pm `handle` with cli_handler's result verification, Config.pm's `env` pattern:
    a dotted name in lxc.environment.runtime breaks `pct config`; in a raw lxc.environment line it does not."""
    create(host, 100, "--rootfs", "local-zfs:2")
    conf_path = host.conf_dir / "100.conf"
    text = conf_path.read_text()
    conf_path.write_text(text + "lxc.environment: discovery.type=single-node\n")
    res = host.run("pct", "config", "100")
    assert res.rc == 0 and "lxc.environment: discovery.type=single-node\n" in res.stdout, res.stderr
    conf_path.write_text(text + "lxc.environment.runtime: discovery.type=single-node\n")
    res = host.run("pct", "config", "100")
    assert res.rc != 0
    assert res.stderr == "400 Result verification failed\nenv: value does not match the regex pattern\n"


def test_config_of_missing_ct(host):
    for args in (["config", "999"], ["status", "999"], ["set", "999", "--memory", "64"],
                 ["destroy", "999"], ["pending", "999"]):
        res = host.run("pct", *args)
        assert (res.rc, res.stdout) == (255, ""), args
        assert res.stderr == "Configuration file 'nodes/pve/lxc/999.conf' does not exist\n", args
    res = host.run("pct", "start", "999")
    assert (res.rc, res.stderr) == (255, "Configuration file 'nodes/pve/lxc/999.conf' does not exist\n")
    for cmd in ("stop", "shutdown"):
        res = host.run("pct", cmd, "999")
        assert (res.rc, res.stderr) == (255, "CT 999 not running\n")


# --- pending semantics -------------------------------------------------------------------------

def test_set_on_stopped_ct_applies_at_once(host):
    create(host, 100, "--rootfs", "local-zfs:1")
    res = host.run("pct", "set", "100", "--env", "TZ=UTC", "--entrypoint", "/bin/app --serve",
                   "--memory", "2048", "--net0", "name=eth0,ip=198.51.100.5/24,bridge=vmbr0")
    assert (res.rc, res.stdout, res.stderr) == (0, "", "")
    conf = host.conf_text(100)
    assert "[pve:pending]" not in conf
    assert "entrypoint: /bin/app --serve\n" in conf and "memory: 2048\n" in conf
    assert re.search(rf"net0: name=eth0,bridge=vmbr0,hwaddr={HWADDR},ip=198.51.100.5/24,type=veth\n", conf)
    assert host.run("pct", "pending", "100").stdout.count("new ") == 0


def test_set_on_running_ct_keeps_non_hotplug_changes_pending(host):
    create(host, 100, "--rootfs", "local-zfs:1", "--env", "OLD=1")
    assert host.run("pct", "start", "100").rc == 0
    res = host.run("pct", "set", "100", "--memory", "1024", "--hostname", "web", "--env", "NEW=2",
                   "--entrypoint", "/bin/sh", "--cmode", "console")
    assert (res.rc, res.stderr) == (0, "")
    conf = host.conf_text(100)
    main, pending = conf.split("\n[pve:pending]\n")
    assert "memory: 1024\n" in main and "hostname: web\n" in main
    assert pending == ("cmode: console\nentrypoint: /bin/sh\nlxc.environment.runtime: NEW=2\n")
    assert host.run("pct", "pending", "100").stdout == (
        "cur arch: amd64\n"
        "new cmode: console\n"
        "new entrypoint: /bin/sh\n"
        "cur env: OLD=1\n"
        "new env: NEW=2\n"
        "cur hostname: web\n"
        "cur memory: 1024\n"
        "cur ostype: debian\n"
        "cur rootfs: local-zfs:subvol-100-disk-0,size=1G\n"
        "cur swap: 512\n"
        "cur unprivileged: 1\n")
    assert "env: NEW=2\n" in host.run("pct", "config", "100").stdout
    current = host.run("pct", "config", "100", "--current").stdout
    assert "env: OLD=1\n" in current and "entrypoint" not in current
    assert host.run("pct", "start", "100").stderr == "CT 100 already running\n"
    assert host.run("pct", "reboot", "100").rc == 0
    conf = host.conf_text(100)
    assert "[pve:pending]" not in conf and "entrypoint: /bin/sh\n" in conf
    assert "lxc.environment.runtime: NEW=2\n" in conf and "OLD=1" not in conf


def test_pending_delete_and_revert(host):
    create(host, 100, "--rootfs", "local-zfs:1", "--mp0", "local-zfs:1,mp=/data", "--cpulimit", "2",
           "--env", "A=1")
    host.run("pct", "start", "100")
    assert host.run("pct", "set", "100", "--delete", "mp0,cpulimit", "--env", "B=2").rc == 0
    out = host.run("pct", "pending", "100").stdout
    assert "del mp0: local-zfs:subvol-100-disk-1,mp=/data,size=1G\n" in out
    assert "cpulimit" not in out  # hot-deletable: removed at once
    assert "mp0" not in host.run("pct", "config", "100").stdout
    assert "mp0" in host.run("pct", "config", "100", "--current").stdout
    assert host.run("pct", "set", "100", "--revert", "env,mp0").rc == 0
    assert "[pve:pending]" not in host.conf_text(100)
    # delete of a volume mount point on a stopped CT keeps the data as unusedN
    host.run("pct", "stop", "100")
    assert host.run("pct", "set", "100", "--delete", "mp0").rc == 0
    conf = host.conf_text(100)
    assert "mp0" not in conf and "unused0: local-zfs:subvol-100-disk-1\n" in conf
    assert zfs(host, "subvol-100-disk-1").is_dir()
    assert host.run("pct", "set", "100", "--delete", "unused0").rc == 0
    assert "unused0" not in host.conf_text(100)
    assert not zfs(host, "subvol-100-disk-1").exists()


def test_set_new_and_replaced_volumes(host):
    create(host, 100, "--rootfs", "local-zfs:1")
    assert host.run("pct", "set", "100", "--mp0", "local-zfs:2,mp=/data").rc == 0
    assert "mp0: local-zfs:subvol-100-disk-1,mp=/data,size=2G\n" in host.conf_text(100)
    (zfs(host, "subvol-100-disk-1") / "keep.txt").write_text("x")
    assert host.run("pct", "set", "100", "--mp0", "local-zfs:3,mp=/data").rc == 0
    conf = host.conf_text(100)
    assert "mp0: local-zfs:subvol-100-disk-2,mp=/data,size=3G\n" in conf
    assert "unused0: local-zfs:subvol-100-disk-1\n" in conf
    assert (zfs(host, "subvol-100-disk-1") / "keep.txt").exists()
    # a running CT hotplugs a new mount point but keeps a change to an existing one pending
    host.run("pct", "start", "100")
    assert host.run("pct", "set", "100", "--mp1", "local-zfs:1,mp=/new", "--mp0",
                    "local-zfs:subvol-100-disk-2,mp=/other").rc == 0
    main, pending = host.conf_text(100).split("\n[pve:pending]\n")
    assert "mp1: local-zfs:subvol-100-disk-3,mp=/new,size=1G\n" in main
    assert pending == "mp0: local-zfs:subvol-100-disk-2,mp=/other\n"


def test_set_errors(host):
    create(host, 100, "--rootfs", "local-zfs:1")
    cases = [
        (["--delete", "memory"], "unable to delete required option 'memory'\n"),
        (["--delete", "rootfs"], "unable to delete required option 'rootfs'\n"),
        (["--unprivileged", "0"], "unable to modify read-only option: 'unprivileged'\n"),
        (["--net0", "name=eth0,bridge=vmbr0,mtu=9000"], "net0: MTU size '9000' is bigger than bridge MTU '1500'\n"),
        (["--net0", "name=eth0,bridge=vmbr0,host-managed=1,ip6=auto"],
         "net0: SLAAC is not supported for host-managed network configuration.\n"),
        ([], "no options specified\n"),
    ]
    for args, message in cases:
        res = host.run("pct", "set", "100", *args)
        assert (res.rc, res.stdout, res.stderr) == (255, "", message), args
    res = host.run("pct", "set", "100", "--memory", "64", "--delete", "memory")
    assert res.rc == 255
    assert res.stderr == ("400 Parameter verification failed.\n"
                          "delete: you can't use '-memory' and -delete memory' at the same time\n"
                          "pct set <vmid> [OPTIONS]\n")
    assert host.run("pct", "set", "100", "--protection", "1").rc == 0
    res = host.run("pct", "set", "100", "--mp0", "local-zfs:1,mp=/x")
    assert (res.rc, res.stderr) == (255, "can't update CT 100 drive 'mp0' - protection mode enabled\n")
    res = host.run("pct", "destroy", "100")
    assert (res.rc, res.stderr) == (255, "can't remove CT 100 - protection mode enabled\n")


def test_set_storage_without_rootdir(host):
    create(host, 100, "--rootfs", "local-zfs:1")
    (host.path("/etc/pve/storage.cfg")).write_text(
        "dir: local\n\tpath /var/lib/vz\n\tcontent vztmpl,iso\n\n"
        "zfspool: local-zfs\n\tpool rpool/data\n\tcontent rootdir,images\n")
    res = host.run("pct", "set", "100", "--mp0", "local:1,mp=/data")
    assert (res.rc, res.stderr) == (255, "storage 'local' does not allow content type 'rootdir' (Container)\n")


def test_locked_ct(host):
    create(host, 100, "--rootfs", "local-zfs:1")
    path = host.conf_dir / "100.conf"
    path.write_text("lock: backup\n" + path.read_text())
    for args in (["set", "100", "--memory", "256"], ["destroy", "100"]):
        res = host.run("pct", *args)
        assert (res.rc, res.stderr) == (255, "CT is locked (backup)\n"), args
    res = host.run("pct", "start", "100")
    assert (res.rc, res.stdout, res.stderr) == (255, "", "CT is locked (backup)\n")
    assert "100        stopped    backup       CT100" in host.run("pct", "list").stdout


def test_config_lock_timeout(host, monkeypatch):
    create(host, 100, "--rootfs", "local-zfs:1")
    lock_path = host.path("/run/lock/lxc/pve-config-100.lock")
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        monkeypatch.setenv("SIM_PVE_LOCK_TIMEOUT", "0.3")
        res = host.run("pct", "set", "100", "--memory", "256")
    assert (res.rc, res.stderr) == (255, f"can't lock file '{lock_path}' - got timeout\n")


# --- lifecycle ---------------------------------------------------------------------------------

def test_list_and_status(host):
    assert host.run("pct", "list").stdout == ""
    create(host, 101, "--rootfs", "local-zfs:1", "--hostname", "web")
    create(host, 100, "--rootfs", "local-zfs:1")
    host.run("pct", "start", "101")
    assert host.run("pct", "list").stdout == (
        "VMID       Status     Lock         Name                \n"
        "100        stopped                 CT100               \n"
        "101        running                 web                 \n")
    assert host.run("pct", "status", "100").stdout == "status: stopped\n"
    verbose = host.run("pct", "status", "101", "--verbose").stdout
    assert "maxmem: 536870912\n" in verbose and "status: running\n" in verbose
    assert "name: web\n" in verbose and verbose.splitlines() == sorted(verbose.splitlines())


def test_start_stop_shutdown_reboot(host):
    create(host, 100, "--rootfs", "local-zfs:1")
    assert host.run("pct", "start", "100").rc == 0
    assert host.run("pct", "start", "100").stderr == "CT 100 already running\n"
    assert host.run("pct", "shutdown", "100", "--timeout", "5", "--forceStop", "1").rc == 0
    assert host.run("pct", "status", "100").stdout == "status: stopped\n"
    res = host.run("pct", "stop", "100")
    assert (res.rc, res.stderr) == (255, "CT 100 not running\n")
    res = host.run("pct", "reboot", "100")
    assert (res.rc, res.stderr) == (255, "CT 100 not running\n")
    host.run("pct", "start", "100")
    assert host.run("pct", "stop", "100").rc == 0


def test_start_template_and_quota(host):
    create(host, 100, "--rootfs", "local-zfs:1,quota=1")
    res = host.run("pct", "start", "100")
    assert (res.rc, res.stderr) == (255, "Quotas are not supported by unprivileged containers.\n")
    create(host, 101, "--rootfs", "local-zfs:1", "--template", "1")
    res = host.run("pct", "start", "101")
    assert (res.rc, res.stderr) == (255, "you can't start a CT if it's a template\n")


def test_destroy_frees_owned_volumes_but_not_bind_mounts(host, tmp_path):
    media = host.path("/tank/media")
    media.mkdir(parents=True)
    (media / "movie.mkv").write_text("data")
    create(host, 100, "--rootfs", "local-zfs:1", "--mp0", "local-zfs:1,mp=/config",
           "--mp1", "/tank/media,mp=/media,ro=1", "--mp2", "local:1,mp=/cache")
    host.run("pct", "set", "100", "--mp0", "local-zfs:1,mp=/config")  # old mp0 -> unused0
    assert "unused0: local-zfs:subvol-100-disk-1\n" in host.conf_text(100)
    host.run("pct", "start", "100")
    res = host.run("pct", "destroy", "100")
    assert (res.rc, res.stderr) == (255, "unable to destroy CT 100 - container is running\n")
    res = host.run("pct", "destroy", "100", "--force", "--purge")
    assert res.rc == 0
    assert res.stdout == ("forced to stop CT 100 before destroying!\n"
                          "purging CT 100 from related configurations..\n")
    assert zfs_names(host) == []
    assert not host.path("/var/lib/vz/images/100/vm-100-disk-0.raw").exists()
    assert (media / "movie.mkv").read_text() == "data"
    assert not (host.conf_dir / "100.conf").exists()
    assert host.run("pct", "status", "100").rc == 255
    create(host, 100, "--rootfs", "local-zfs:1")  # the VMID is free again


def test_exec_resolves_rootfs_volumes_and_bind_mounts(host, tmp_path):
    media = host.path("/srv/media")
    media.mkdir(parents=True)
    (media / "a.txt").write_text("from host\n")
    create(host, 100, "--rootfs", "local-zfs:1", "--mp0", "local-zfs:1,mp=/config",
           "--mp1", "/srv/media,mp=/media", "--env", "TZ=UTC")
    (zfs(host, "subvol-100-disk-1") / "app.ini").write_text("[app]\n")
    res = host.run("pct", "exec", "100", "--", "cat", "/etc/os-release")
    assert (res.rc, res.stderr) == (255, "container '100' not running!\n")
    host.run("pct", "start", "100")
    assert host.run("pct", "exec", "100", "--", "cat", "/config/app.ini").stdout == "[app]\n"
    assert host.run("pct", "exec", "100", "--", "cat", "/media/a.txt").stdout == "from host\n"
    assert "ID=debian" in host.run("pct", "exec", "100", "--", "cat", "/etc/os-release").stdout
    assert host.run("pct", "exec", "100", "--", "test", "-e", "/media/a.txt").rc == 0
    assert host.run("pct", "exec", "100", "--", "test", "-e", "/media/nope").rc == 1
    assert host.run("pct", "exec", "100", "--", "ls", "/media").stdout == "a.txt\n"
    assert host.run("pct", "exec", "100", "--", "env").stdout == "TZ=UTC\n"
    res = host.run("pct", "exec", "100", "--", "cat", "/nope")
    assert (res.rc, res.stderr) == (1, "cat: /nope: No such file or directory\n")
    res = host.run("pct", "exec", "100")
    assert (res.rc, res.stderr) == (255, "missing command\n")


def test_push_needs_a_running_ct_and_getent_reads_only_the_cts_hosts_file(host, tmp_path):
    create(host, 100, "--rootfs", "local-zfs:1")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n198.18.0.7\tdb database # the peer\n")
    res = host.run("pct", "push", "100", str(hosts), "/etc/hosts", "--perms", "0644")
    assert (res.rc, res.stderr) == (255, "can only push files to a running CT\n")
    host.run("pct", "start", "100")
    assert host.run("pct", "exec", "100", "--", "getent", "hosts", "db").rc == 2, "no entries: not resolved"
    assert host.run("pct", "push", "100", str(hosts), "/etc/hosts", "--perms", "644").rc == 0
    res = host.run("pct", "exec", "100", "--", "getent", "hosts", "database")
    assert (res.rc, res.stdout.split()) == (0, ["198.18.0.7", "db", "database"])
    assert host.run("pct", "exec", "100", "--", "getent", "hosts", "the").rc == 2, "comments are not names"
    assert host.run("pct", "exec", "100", "--", "cat", "/etc/hosts").stdout == hosts.read_text()
    res = host.run("pct", "push", "100", str(hosts), "/nodir/hosts")
    assert res.rc == 255 and "No such file or directory" in res.stderr


# --- move-volume ---------------------------------------------------------------------------------

def test_move_volume_to_another_ct(host):
    create(host, 100, "--rootfs", "local-zfs:1", "--mp0", "local-zfs:2,mp=/data,backup=1")
    create(host, 101, "--rootfs", "local-zfs:1")
    (zfs(host, "subvol-100-disk-1") / "db.sqlite").write_text("rows")
    res = host.run("pct", "move-volume", "100", "mp0", "--target-vmid", "101", "--target-volume", "mp1")
    assert (res.rc, res.stderr) == (0, "")
    assert res.stdout == ("moving volume 'mp0' from container '100' to '101'\n"
                          "removing volume 'mp0' from container '100' config\n"
                          "target container '101' updated with 'mp1'\n")
    assert "mp0" not in host.conf_text(100)
    assert "mp1: local-zfs:subvol-101-disk-1,mp=/data,backup=1,size=2G\n" in host.conf_text(101)
    assert not zfs(host, "subvol-100-disk-1").exists()
    assert (zfs(host, "subvol-101-disk-1") / "db.sqlite").read_text() == "rows"
    # an unused volume can go to an unusedN key
    host.run("pct", "set", "101", "--delete", "mp1")
    res = host.run("pct", "move-volume", "101", "unused0", "--target-vmid", "100",
                   "--target-volume", "unused3")
    assert res.rc == 0, res.stderr
    assert "unused3: local-zfs:subvol-100-disk-1\n" in host.conf_text(100)


def test_move_volume_errors(host, tmp_path):
    host.path("/srv/bind").mkdir(parents=True)
    create(host, 100, "--rootfs", "local-zfs:1", "--mp0", "local-zfs:1,mp=/data",
           "--mp1", "/srv/bind,mp=/bind")
    create(host, 101, "--rootfs", "local-zfs:1", "--mp0", "local-zfs:1,mp=/taken")
    cases = [
        (["100", "rootfs", "--target-vmid", "101"], "Cannot move to/from 'rootfs'\n"),
        (["100", "mp0", "--target-vmid", "555"], "could not find CT 555\n"),
        (["100", "mp0", "--target-vmid", "101"],
         "Target volume key 'mp0' is already in use for container '101'\n"),
        (["100", "mp7", "--target-vmid", "101"], "volume 'mp7' for container '100' does not exist\n"),
        (["100", "mp1", "--target-vmid", "101", "--target-volume", "mp5"],
         "Storage does not support moving of this disk to another container\n"),
        (["100", "mp0", "local", "--target-vmid", "101"], "either set storage or target-vmid, but not both\n"),
        (["100", "unused0", "--target-vmid", "101", "--target-volume", "mp4"],
         "Moving an unused volume to a used one is not possible\n"),
    ]
    for args, message in cases:
        res = host.run("pct", "move-volume", *args)
        assert (res.rc, res.stdout, res.stderr) == (255, "", message), args
    res = host.run("pct", "move-volume", "100", "mp0")
    msg = "both 'storage' and 'target-vmid' missing, either needs to be set"
    assert res.stderr == (f"400 Parameter verification failed.\nstorage: {msg}\ntarget-vmid: {msg}\n"
                          "pct move-volume <vmid> <volume> [<storage>] [<target-vmid>] "
                          "[<target-volume>] [OPTIONS]\n")
    host.run("pct", "start", "100")
    res = host.run("pct", "move-volume", "100", "mp0", "--target-vmid", "101", "--target-volume", "mp3")
    assert (res.rc, res.stderr) == (
        255, "Cannot move in-use volume while the source CT is running - detach or shutdown first\n")
    res = host.run("pct", "move-volume", "100", "mp0", "local")
    assert (res.rc, res.stderr) == (255, "cannot move volumes of a running container\n")


def test_move_volume_to_another_storage(host):
    create(host, 100, "--rootfs", "local-zfs:1", "--mp0", "local-zfs:1,mp=/data")
    (zfs(host, "subvol-100-disk-1") / "f").write_text("x")
    res = host.run("pct", "move-volume", "100", "mp0", "local")
    assert res.rc == 0, res.stderr
    conf = host.conf_text(100)
    assert "mp0: local:100/vm-100-disk-0.raw,mp=/data,size=1G\n" in conf
    assert "unused0: local-zfs:subvol-100-disk-1\n" in conf and "lock" not in conf
    assert (host.path("/var/lib/vz/images/100/vm-100-disk-0.raw") / "f").read_text() == "x"
    res = host.run("pct", "move-volume", "100", "mp0", "local-zfs", "--delete", "1")
    assert res.rc == 0, res.stderr
    conf = host.conf_text(100)
    assert "mp0: local-zfs:subvol-100-disk-2,mp=/data,size=1G\n" in conf
    assert not host.path("/var/lib/vz/images/100/vm-100-disk-0.raw").exists()


# --- concurrency ---------------------------------------------------------------------------------

def test_concurrent_create_of_one_vmid(host):
    procs = [host.popen("pct", "create", "100", TPL, "--rootfs", "local-zfs:1") for _ in range(3)]
    results = [(p.wait(timeout=30), p.stderr.read().decode()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert sorted(rc for rc, _ in results) == [0, 255, 255]
    for rc, err in results:
        if rc:
            assert err in ("CT 100 already exists on node 'pve'\n",
                           "unable to create CT 100 - CT 100 already exists on node 'pve'\n")
    assert zfs_names(host) == ["subvol-100-disk-0"]
    assert "lock" not in host.conf_text(100)


def test_resize_grows_and_refuses_to_shrink(host, tmp_path):
    host.path("/srv/bind").mkdir(parents=True)
    create(host, 100, "--rootfs", "local-zfs:1", "--mp0", "local-zfs:1,mp=/data", "--mp1", "/srv/bind,mp=/bind")
    res = host.run("pct", "resize", "100", "rootfs", "3G")
    assert (res.rc, res.stderr) == (0, ""), res.stderr
    res = host.run("pct", "resize", "100", "mp0", "+1G")
    assert (res.rc, res.stderr) == (0, ""), res.stderr
    conf = host.conf_text(100)
    assert "rootfs: local-zfs:subvol-100-disk-0,size=3G\n" in conf and "mp0: local-zfs:subvol-100-disk-1,mp=/data,size=2G\n" in conf
    for args, message in [
        (["rootfs", "2G"], "unable to shrink disk size\n"),
        (["rootfs", "3G"], "disk is already at specified size\n"),
        (["mp1", "5G"], "unable to parse volume ID '/srv/bind'\n"),
    ]:
        res = host.run("pct", "resize", "100", *args)
        assert (res.rc, res.stderr) == (255, message), args
    with open(host.path("/run/lock/lxc/pve-config-100.lock"), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another command holds the config lock: the task times out
        res = host.run("pct", "resize", "100", "rootfs", "4G", env={"SIM_PVE_LOCK_TIMEOUT": "0.2"})
    assert res.rc == 0, "no $upid_exit for `pct resize` (pve-container src/PVE/CLI/pct.pm)"
    assert res.stderr == f"can't lock file '{host.path('/run/lock/lxc/pve-config-100.lock')}' - got timeout\n"
    assert "size=3G" in host.conf_text(100)
    res = host.run("pct", "resize", "100", "rootfs", "big")
    assert res.rc == 255 and "size: value does not match the regex pattern" in res.stderr
