"""`pct create` from OCI archives: detection, extraction, image config -> CT config, errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile

import pytest

from sim.pve.testkit import (MT_DOCKER_LAYER, MT_LAYER_TAR, ToolHost, build_oci_archive,
                             layer_tar)

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1000:\nvideo:x:44:app\nrender:x:105:app\n"
HWADDR = r"BC:24:11:[0-9A-F]{2}:[0-9A-F]{2}:[0-9A-F]{2}"


@pytest.fixture
def host(tmp_path) -> ToolHost:
    h = ToolHost(tmp_path)
    h.template_cache.mkdir(parents=True)
    return h


def base_layer(os_release: str | None = "ID=alpine\nVERSION_ID=3.20.3\n") -> bytes:
    files: dict = {"etc/passwd": PASSWD, "etc/group": GROUP, "bin/busybox": b"\x7fELF",
                   "var/lib/old/stale.db": "old", "var/lib/keep/kept.db": "kept",
                   "srv/lower.txt": "lower"}
    if os_release is not None:
        files["etc/os-release"] = os_release
    return layer_tar(files, symlinks={"bin/sh": "busybox"})


def app_archive(host: ToolHost, name: str = "app_1.0.tar", config: dict | None = None,
                **kwargs) -> str:
    top = layer_tar({"var/lib/old/.wh.stale.db": "", "srv/.wh..wh..opq": "",
                     "srv/new.txt": "upper", "app/server": "#!/bin/sh\n"})
    cfg = {"Entrypoint": ["/app/server"], "Cmd": ["--listen", "0.0.0.0:80", "--motd", "it's up"],
           "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_MODE=prod"],
           "WorkingDir": "/app", "User": "app", "Volumes": {"/config": {}, "/cache": {}},
           "ExposedPorts": {"80/tcp": {}}}
    if config is not None:
        cfg = config
    layers = kwargs.pop("layers", [base_layer(), top])
    build_oci_archive(host.template_cache / name, layers, cfg, **kwargs)
    return f"local:vztmpl/{name}"


def zfs(host: ToolHost, name: str):
    return host.state / "sim" / "zfs" / "rpool" / "data" / name


def test_create_from_oci_archive(host):
    tpl = app_archive(host)
    res = host.run("pct", "create", "200", tpl, "--rootfs", "local-zfs:2", "--env", "TZ=UTC",
                   "--net0", "name=eth0,bridge=vmbr0,ip=dhcp",
                   "--net1", "name=eth1,bridge=vmbr1,ip=dhcp,host-managed=0",
                   "--entrypoint", "/bin/ignored")
    assert (res.rc, res.stderr) == (0, "")
    assert res.stdout == ("Detected OCI archive\n"
                          "creating base directory for volume at /cache\n"
                          "creating base directory for volume at /config\n"
                          "Auto-Enabling host-managed network for network device net0.\n")
    conf = re.sub(HWADDR, "HW", host.conf_text(200))
    assert conf == (
        "arch: amd64\n"
        "cmode: console\n"
        "entrypoint: /app/server --listen 0.0.0.0:80 --motd 'it'\"'\"'s up'\n"
        "hostname: CT200\n"
        "memory: 512\n"
        "net0: name=eth0,bridge=vmbr0,host-managed=1,hwaddr=HW,ip=dhcp,type=veth\n"
        "net1: name=eth1,bridge=vmbr1,host-managed=0,hwaddr=HW,ip=dhcp,type=veth\n"
        "ostype: alpine\n"
        "rootfs: local-zfs:subvol-200-disk-0,size=2G\n"
        "swap: 512\n"
        "unprivileged: 1\n"
        "lxc.environment.runtime: PATH=/usr/local/bin:/usr/bin:/bin\n"
        "lxc.environment.runtime: APP_MODE=prod\n"
        "lxc.init.cwd: /app\n"
        "lxc.signal.halt: SIGTERM\n"
        "lxc.init.uid: 1000\n"
        "lxc.init.gid: 1000\n"
        "lxc.init.groups: 44,105\n")
    out = host.run("pct", "config", "200").stdout_bytes
    assert b"env: PATH=/usr/local/bin:/usr/bin:/bin\x00APP_MODE=prod\n" in out
    root = zfs(host, "subvol-200-disk-0")
    assert (root / "app" / "server").read_text() == "#!/bin/sh\n"
    assert (root / "bin" / "sh").is_symlink() and (root / "config").is_dir() and (root / "cache").is_dir()
    assert not (root / "var/lib/old/stale.db").exists()  # whiteout
    assert (root / "var/lib/keep/kept.db").read_text() == "kept"
    assert sorted(p.name for p in (root / "srv").iterdir()) == ["new.txt"]  # opaque dir


def test_image_with_sbin_init_is_a_system_container(host):
    tpl = app_archive(host, config={"Cmd": ["/sbin/init"], "StopSignal": "SIGRTMIN+3",
                                    "Env": ["container=lxc"]})
    res = host.run("pct", "create", "201", tpl, "--rootfs", "local-zfs:1",
                   "--net0", "name=eth0,bridge=vmbr0,ip=dhcp")
    assert res.stdout == "Detected OCI archive\n"
    conf = host.conf_text(201)
    assert "entrypoint" not in conf and "cmode" not in conf and "host-managed" not in conf
    assert conf.endswith("lxc.environment.runtime: container=lxc\n"
                         "lxc.init.cwd: /\nlxc.signal.halt: SIGRTMIN+3\n")


def test_os_detection(host):
    unknown = app_archive(host, "weird_1.tar", layers=[base_layer("ID=plan9\n")], config={"Cmd": ["/x"]})
    res = host.run("pct", "create", "202", unknown, "--rootfs", "local-zfs:1")
    assert (res.rc, res.stdout) == (255, "Detected OCI archive\n")
    assert res.stderr == "unable to create CT 202 - unable to detect OS distribution\n"
    assert not (host.conf_dir / "202.conf").exists() and not zfs(host, "subvol-202-disk-0").exists()

    res = host.run("pct", "create", "202", unknown, "--rootfs", "local-zfs:1", "--ostype", "unmanaged")
    assert res.rc == 0, res.stderr
    assert "ostype: unmanaged\n" in host.conf_text(202)

    bare = app_archive(host, "bare_1.tar", layers=[base_layer(None)], config={"Cmd": ["/x"]})
    res = host.run("pct", "create", "203", bare, "--rootfs", "local-zfs:1")
    assert res.rc == 0, res.stderr
    assert "no /etc/os-release found in the container - assuming 'unmanaged'" in res.stdout
    assert "ostype: unmanaged\n" in host.conf_text(203)

    deb = app_archive(host, "deb_1.tar", layers=[base_layer('ID="debian"\nVERSION_ID="12"\n')],
                      config={"Cmd": ["/x"]})
    res = host.run("pct", "create", "204", deb, "--rootfs", "local-zfs:1", "--ostype", "alpine")
    assert "got unexpected ostype (debian != alpine)" in res.stdout
    assert "ostype: debian\n" in host.conf_text(204)


def test_privileged_oci_create_fails_and_leaves_nothing(host):
    tpl = app_archive(host)
    res = host.run("pct", "create", "205", tpl, "--rootfs", "local-zfs:1", "--unprivileged", "0")
    assert (res.rc, res.stdout) == (255, "Detected OCI archive\n")
    assert res.stderr == "unable to create CT 205 - Invalid argument\n"
    assert not (host.conf_dir / "205.conf").exists()
    assert not zfs(host, "subvol-205-disk-0").exists()


def test_docker_media_types_are_rejected(host):
    tpl = app_archive(host, "docker_1.tar", layer_media_type=MT_DOCKER_LAYER)
    res = host.run("pct", "create", "206", tpl, "--rootfs", "local-zfs:1")
    assert res.rc == 255
    assert res.stderr == ("unable to create CT 206 - Error while extracting OCI image: Layer has wrong "
                          "media type: application/vnd.docker.image.rootfs.diff.tar.gzip\n")
    assert not zfs(host, "subvol-206-disk-0").exists()
    tpl = app_archive(host, "cfg_1.tar",
                      config_media_type="application/vnd.docker.container.image.v1+json")
    res = host.run("pct", "create", "207", tpl, "--rootfs", "local-zfs:1")
    assert res.stderr == "unable to create CT 207 - Error while extracting OCI image: Wrong media type\n"


def test_control_characters_abort(host):
    tpl = app_archive(host, config={"Cmd": ["/x"], "Env": ["A=line\nbreak"]})
    res = host.run("pct", "create", "208", tpl, "--rootfs", "local-zfs:1")
    assert res.rc == 255
    assert res.stderr == ("unable to create CT 208 - OCI config value for 'Env' contains forbidden "
                          "control characters!\n")
    tab = app_archive(host, "tab_1.tar", config={"Cmd": ["/x"], "Env": ["A=tab\there"]},
                      layer_media_type=MT_LAYER_TAR)
    assert host.run("pct", "create", "209", tab, "--rootfs", "local-zfs:1").rc == 0


def test_only_uncompressed_tar_with_layout_is_oci(host):
    tpl = app_archive(host, "plain.tar")
    gz = host.template_cache / "plain-oci.tar.gz"
    subprocess.run(["gzip", "-c", str(host.template_cache / "plain.tar")], stdout=gz.open("wb"), check=True)
    res = host.run("pct", "create", "210", "local:vztmpl/plain-oci.tar.gz", "--rootfs", "local-zfs:1",
                   "--ostype", "unmanaged")
    assert res.rc == 0 and "Detected OCI archive" not in res.stdout
    rootfs_tar = host.template_cache / "rootfs.tar"
    with tarfile.open(rootfs_tar, "w") as tar:
        tar.add(host.template_cache / "plain.tar", arcname="etc/something")
    res = host.run("pct", "create", "211", "local:vztmpl/rootfs.tar", "--rootfs", "local-zfs:1",
                   "--ostype", "unmanaged")
    assert res.rc == 0 and "Detected OCI archive" not in res.stdout
    assert tpl


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_archive_written_by_real_skopeo(host, tmp_path):
    app_archive(host, "src.tar")
    layout = tmp_path / "layout"
    with tarfile.open(host.template_cache / "src.tar") as tar:
        tar.extractall(layout, filter="data")
    out = host.template_cache / "nginx_1.27.tar"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{layout}", f"oci-archive:{out}"],
                   check=True, capture_output=True, timeout=60)
    res = host.run("pct", "create", "212", "local:vztmpl/nginx_1.27.tar", "--rootfs", "local-zfs:1")
    assert res.rc == 0, res.stderr
    assert res.stdout.startswith("Detected OCI archive\n")
    assert "entrypoint: /app/server --listen" in host.conf_text(212)


# ---- create-time mount points (API2/LXC.pm create_vm -> LXC.pm mount_all, ignore_ro) ----

def _srv_archive(host: ToolHost) -> str:
    """An image whose /srv holds a file (base_layer's srv/lower.txt)."""
    return app_archive(host, layers=[base_layer()])


def test_bind_mount_at_create_owned_by_host_root_fails_like_pve(host):
    """Extraction chowns the existing host directory inside the CT's user namespace: EPERM
    when it is owned by an id outside the map (host root here), so the create fails."""
    data = host.path("/tank/data")
    data.mkdir(parents=True)
    (data / "mine.txt").write_text("user data")
    res = host.run("pct", "create", "200", _srv_archive(host), "--rootfs", "local-zfs:1",
                   "--mp0", "/tank/data,mp=/srv,ro=1")
    assert res.rc == 255
    assert res.stderr == ("unable to create CT 200 - Error while extracting OCI image: "
                          "IO error: failed to unpack `/var/lib/lxc/200/rootfs/srv/lower.txt`\n")
    assert sorted(p.name for p in data.iterdir()) == ["mine.txt"]
    assert not (host.conf_dir / "200.conf").exists()


def test_bind_mount_at_create_owned_by_mapped_id_receives_the_image_files(host):
    """`ro=1` is ignored while extracting: the image's files land in the user's directory,
    which then belongs to the image's owner (host uid 100000 + N)."""
    import os
    data = host.path("/tank/data")
    data.mkdir(parents=True)
    os.chown(data, 100000, 100000)
    res = host.run("pct", "create", "200", _srv_archive(host), "--rootfs", "local-zfs:1",
                   "--mp0", "/tank/data,mp=/srv,ro=1")
    assert res.rc == 0, res.stderr
    assert (data / "lower.txt").read_text() == "lower"
    assert (os.stat(data / "lower.txt").st_uid, os.stat(data).st_uid) == (100000, 100000)


def test_bind_source_missing_at_create(host):
    res = host.run("pct", "create", "200", _srv_archive(host), "--rootfs", "local-zfs:1",
                   "--mp0", "/tank/nope,mp=/data")
    assert (res.rc, res.stderr) == (255, "unable to create CT 200 - directory '/tank/nope' does not exist\n")
    assert "mounting container failed\n" in res.stdout
    assert zfs_names_of(host) == []


def test_bind_mount_added_after_create_leaves_the_source_alone(host):
    data = host.path("/tank/data")
    data.mkdir(parents=True)
    res = host.run("pct", "create", "200", _srv_archive(host), "--rootfs", "local-zfs:1")
    assert res.rc == 0, res.stderr
    assert host.run("pct", "set", "200", "--mp0", "/tank/data,mp=/srv,ro=1").rc == 0
    assert list(data.iterdir()) == [] and data.stat().st_uid == 0


def zfs_names_of(host: ToolHost) -> list:
    folder = host.state / "sim" / "zfs" / "rpool" / "data"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_bind_mount_at_create_fails_on_an_empty_image_directory_too(host):
    """Debian-based images ship an empty /media: the chown of that directory alone fails."""
    data = host.path("/tank/media")
    data.mkdir(parents=True)
    tpl = app_archive(host, layers=[base_layer(), layer_tar({"media": None})])
    res = host.run("pct", "create", "200", tpl, "--rootfs", "local-zfs:1", "--mp0", "/tank/media,mp=/media,ro=1")
    assert (res.rc, res.stderr) == (255, "unable to create CT 200 - Error while extracting OCI image: "
                                         "IO error: failed to unpack `/var/lib/lxc/200/rootfs/media`\n")
