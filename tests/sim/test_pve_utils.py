"""pvesm, pvesh, lxc-info, pveam, pveversion and the tools.log record."""

from __future__ import annotations

import json
import re

import pytest

from sim.pve.pveam import template_bytes
from sim.pve.testkit import ToolHost

DEBIAN = "debian-12-standard_12.7-1_amd64.tar.zst"
TPL = f"local:vztmpl/{DEBIAN}"


@pytest.fixture
def host(tmp_path) -> ToolHost:
    h = ToolHost(tmp_path)
    h.template_cache.mkdir(parents=True)
    (h.template_cache / DEBIAN).write_bytes(template_bytes(DEBIAN))
    return h


def create(host: ToolHost, vmid: int, *extra: str) -> None:
    res = host.run("pct", "create", str(vmid), TPL, "--rootfs", "local-zfs:1", *extra)
    assert res.rc == 0, res.stderr


# --- pvesm ---------------------------------------------------------------------------------------

def test_pvesm_path(host):
    res = host.run("pvesm", "path", "local:vztmpl/nginx_1.27.tar")
    assert (res.rc, res.stdout) == (0, f"{host.template_cache / 'nginx_1.27.tar'}\n")
    res = host.run("pvesm", "path", "local-zfs:subvol-100-disk-0")
    assert res.stdout == f"{host.state}/sim/zfs/rpool/data/subvol-100-disk-0\n"
    res = host.run("pvesm", "path", "local:100/vm-100-disk-1.raw")
    assert res.stdout == f"{host.path('/var/lib/vz/images/100/vm-100-disk-1.raw')}\n"
    for volid, message in (("garbage", "unable to parse volume ID 'garbage'\n"),
                           ("nope:vztmpl/x.tar", "storage 'nope' does not exist\n"),
                           ("local-zfs:vztmpl/x.tar", "unable to parse zfs volume name 'vztmpl/x.tar'\n"),
                           ("local:foo/bar", "unable to parse directory volume name 'foo/bar'\n")):
        res = host.run("pvesm", "path", volid)
        assert (res.rc, res.stdout, res.stderr) == (255, "", message), volid


def test_pvesm_list(host):
    cache = host.template_cache
    (cache / "nginx_1.27.tar").write_bytes(b"x" * 12345)
    (cache / "app_2.tar.tmp.4242").write_bytes(b"partial")
    (cache / "notes.txt").write_text("no")
    create(host, 100)
    res = host.run("pvesm", "list", "local", "--content", "vztmpl")
    size = (cache / DEBIAN).stat().st_size
    width = len(f"local:vztmpl/{DEBIAN}")
    digits = len(str(size))
    assert res.stdout == (
        f"{'Volid':<{width}} Format  Type      {'Size':>{digits}} VMID\n"
        f"{'local:vztmpl/nginx_1.27.tar':<{width}} tar     vztmpl    {12345:>{digits}}\n"
        f"{'local:vztmpl/' + DEBIAN:<{width}} tzst    vztmpl    {size:>{digits}}\n")
    res = host.run("pvesm", "list", "local-zfs", "--vmid", "100")
    volid = "local-zfs:subvol-100-disk-0"
    assert res.stdout == (f"{'Volid':<{len(volid)}} Format  Type      {'Size':>10} VMID\n"
                          f"{volid} subvol  rootdir   1073741824 100\n")
    res = host.run("pvesm", "list", "nope")
    assert (res.rc, res.stderr) == (255, "storage 'nope' does not exist\n")


def test_pvesm_status_and_free(host):
    res = host.run("pvesm", "status")
    lines = res.stdout.splitlines()
    assert lines[0] == f"{'Name':<10} {'Type':>10} {'Status':>10} {'Total':>15} {'Used':>15} {'Available':>15} {'%':>8}"
    assert re.fullmatch(r"local      +dir +active +\d+ +\d+ +\d+ +\d+\.\d\d%", lines[1])
    assert re.fullmatch(r"local-zfs  +zfspool +active +\d+ +\d+ +\d+ +\d+\.\d\d%", lines[2])
    assert len(lines) == 3
    assert host.run("pvesm", "free", TPL).rc == 0
    assert not (host.template_cache / DEBIAN).exists()
    res = host.run("pvesm", "free", TPL)
    assert (res.rc, res.stderr) == (255, f"volume '{TPL}' does not exist\n")


def test_storage_cfg_is_read(host):
    host.path("/etc/pve").mkdir(parents=True, exist_ok=True)
    host.path("/etc/pve/storage.cfg").write_text(
        "dir: local\n\tpath /var/lib/vz\n\tcontent vztmpl\n\n"
        "dir: tank\n\tpath /tank/pve\n\tcontent rootdir,images\n\n"
        "zfspool: fast\n\tpool fast/ct\n\tcontent rootdir\n\tdisable\n")
    res = host.run("pvesm", "status")
    assert [line.split()[:3] for line in res.stdout.splitlines()[1:]] == [
        ["fast", "zfspool", "disabled"], ["local", "dir", "active"], ["tank", "dir", "active"]]
    assert res.stdout.splitlines()[1].endswith("     N/A")
    create(host, 100, "--rootfs", "tank:1")
    assert host.path("/tank/pve/images/100/vm-100-disk-0.raw").is_dir()


# --- pvesh ---------------------------------------------------------------------------------------

def test_pvesh_nextid(host):
    assert host.run("pvesh", "get", "/cluster/nextid").stdout == "100\n"
    create(host, 100)
    (host.conf_dir.parent.parent / "other" / "qemu-server").mkdir(parents=True)
    (host.conf_dir.parent.parent / "other" / "qemu-server" / "101.conf").write_text("memory: 512\n")
    assert host.run("pvesh", "get", "/cluster/nextid").stdout == "102\n"
    assert host.run("pvesh", "get", "/cluster/nextid").stdout == "102\n"  # reserves nothing
    assert host.run("pvesh", "get", "/cluster/nextid", "--output-format", "json").stdout == "102\n"
    assert host.run("pvesh", "get", "/cluster/nextid", "--vmid", "150").stdout == "150\n"
    res = host.run("pvesh", "get", "/cluster/nextid", "--vmid", "100")
    assert res.rc == 255
    assert res.stderr == ("400 Parameter verification failed.\nvmid: VM 100 already exists\n"
                          "pvesh get /cluster/nextid [OPTIONS] [FORMAT_OPTIONS]\n")
    host.path("/etc/pve/datacenter.cfg").write_text("next-id: lower=100,upper=102\n")
    res = host.run("pvesh", "get", "/cluster/nextid")
    assert (res.rc, res.stderr) == (255, "unable to get any free VMID in range [100, 102]\n")


def test_pvesh_lxc_list_and_interfaces(host):
    create(host, 100, "--net0", "name=eth0,bridge=vmbr0,ip=dhcp,hwaddr=BC:24:11:00:00:01",
           "--hostname", "web")
    create(host, 101)
    host.run("pct", "start", "100")
    res = host.run("pvesh", "get", "/nodes/pve/lxc", "--output-format", "json")
    data = {d["vmid"]: d for d in json.loads(res.stdout)}
    assert (data[100]["status"], data[100]["name"]) == ("running", "web")
    assert (data[101]["status"], data[101]["name"]) == ("stopped", "CT101")
    res = host.run("pvesh", "get", "/nodes/pve/lxc/100/interfaces", "--output-format", "json")
    ifaces = json.loads(res.stdout)
    assert [i["name"] for i in ifaces] == ["lo", "eth0"]
    eth0 = ifaces[1]
    assert eth0["hwaddr"] == "bc:24:11:00:00:01"
    assert re.fullmatch(r"198\.18\.\d+\.\d+/15", eth0["inet"])
    assert eth0["inet6"] == "fe80::be24:11ff:fe00:1/64"
    res = host.run("pvesh", "get", "/nodes/pve/lxc/101/interfaces", "--output-format", "json")
    assert (res.rc, res.stdout) == (0, "null\n")
    res = host.run("pvesh", "get", "/nodes/pve/lxc/999/interfaces", "--output-format", "json")
    assert (res.rc, res.stderr) == (255, "Configuration file 'nodes/pve/lxc/999.conf' does not exist\n")
    res = host.run("pvesh", "get", "/nope")
    assert (res.rc, res.stderr) == (255, "No 'get' handler defined for '/nope'\n")


# --- lxc-info --------------------------------------------------------------------------------------

def test_lxc_info_ip(host, tmp_path):
    create(host, 100, "--net0", "name=eth0,bridge=vmbr0,ip=dhcp")
    create(host, 101, "--net0", "name=eth0,bridge=vmbr0,ip=198.51.100.10/24,gw=198.51.100.1")
    assert host.run("lxc-info", "-n", "100", "-iH").stdout == ""
    host.run("pct", "start", "100")
    host.run("pct", "start", "101")
    ip = host.run("lxc-info", "-n", "100", "-iH").stdout
    assert re.fullmatch(r"198\.18\.\d+\.\d+\n", ip)
    assert host.run("lxc-info", "-n", "100", "-iH").stdout == ip  # deterministic
    assert not ip.startswith(("10.", "172.", "192."))
    assert host.run("lxc-info", "-n", "101", "-iH").stdout == "198.51.100.10\n"
    assert host.run("lxc-info", "-n", "100", "-s").stdout == "State:          RUNNING\n"
    other = ToolHost(tmp_path / "other", node="pve2")
    other.template_cache.mkdir(parents=True)
    (other.template_cache / DEBIAN).write_bytes(template_bytes(DEBIAN))
    create(other, 100, "--net0", "name=eth0,bridge=vmbr0,ip=dhcp")
    other.run("pct", "start", "100")
    assert other.run("lxc-info", "-n", "100", "-iH").stdout != ip
    res = host.run("lxc-info", "-n", "555", "-iH")
    assert (res.rc, res.stdout, res.stderr) == (1, "", "555 doesn't exist\n")


# --- pveam / pveversion --------------------------------------------------------------------------

def test_pveam(host):
    res = host.run("pveam", "available", "--section", "system")
    assert "system          alpine-3.20-default_20240908_amd64.tar.xz\n" in res.stdout
    assert all(line.startswith("system ") for line in res.stdout.splitlines())
    name = "alpine-3.20-default_20240908_amd64.tar.xz"
    res = host.run("pveam", "download", "local", name)
    assert res.rc == 0
    url = f"http://download.proxmox.com/images/system/{name}"
    dest = host.template_cache / name
    assert res.stdout.startswith(f"downloading {url} to {dest}\n")
    assert res.stdout.endswith(f"download of '{url}' to '{dest}' finished\n")
    assert dest.read_bytes()[:6] == b"\xfd7zXZ\x00"
    listing = host.run("pveam", "list", "local").stdout.splitlines()
    assert listing[0].split() == ["NAME", "SIZE"]
    assert any(line.startswith(f"local:vztmpl/{name} ") for line in listing)
    res = host.run("pct", "create", "100", f"local:vztmpl/{name}", "--rootfs", "local-zfs:1")
    assert res.rc == 0 and "ostype: alpine\n" in host.conf_text(100)
    res = host.run("pveam", "download", "local", "nope.tar.zst")
    assert res.rc == 255
    assert res.stderr == ("400 Parameter verification failed.\ntemplate: no such template\n"
                          "pveam download <storage> <template>\n")
    res = host.run("pveam", "download", "local-zfs", name)
    assert (res.rc, res.stderr) == (255, "storage 'local-zfs' does not support templates\n")


def test_pveam_download_failure_exits_0(host):
    """No `$upid_exit` for `pveam download` (pve-manager PVE/CLI/pveam.pm): the task's error is
    on stderr, the exit code 0, and no file is left."""
    name = "alpine-3.20-default_20240908_amd64.tar.xz"
    (host.state / "sim").mkdir(parents=True, exist_ok=True)
    (host.state / "sim" / "no-internet").touch()
    res = host.run("pveam", "download", "local", name)
    assert res.rc == 0
    assert re.fullmatch(r"download failed: command 'wget --progress=dot:giga -O \S+\.tmp_dwnl\.\d+ "
                        rf"http://download\.proxmox\.com/images/system/{re.escape(name)}' failed: exit code 4\n",
                        res.stderr), res.stderr
    assert "wget: unable to resolve host address 'download.proxmox.com'\n" in res.stdout
    assert not any(p.name.startswith(name) for p in host.template_cache.iterdir())


def test_pveversion(host):
    assert host.run("pveversion").stdout == \
        "pve-manager/9.1.1/42db4a6cf33dac83 (running kernel: 6.17.2-1-pve)\n"
    verbose = host.run("pveversion", "-v").stdout.splitlines()
    assert verbose[0].startswith("proxmox-ve: 9.1.0 (running kernel: 6.17.2-1-pve)")
    assert "pve-container: 6.1.10" in verbose


# --- tools.log -------------------------------------------------------------------------------------

def test_every_invocation_is_logged_with_exact_argv(host):
    odd = ["--description", "it's \"quoted\"; $(rm -rf /)\nnext line", "--env", "A=b c"]
    host.run("pct", "set", "555", *odd)
    host.run("pveversion")
    lines = [json.loads(line) for line in (host.state / "tools.log").read_text().splitlines()]
    assert [entry["tool"] for entry in lines] == ["pct", "pveversion"]
    assert lines[0]["argv"] == ["set", "555", *odd]
    assert lines[1]["argv"] == []
    assert all(isinstance(entry["ts"], float) for entry in lines)
