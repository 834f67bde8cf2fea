"""Volumes as PVE makes them (owner, mode, lost+found per storage type), the image USER,
`keepattrs` per pve-container version, and simulated entrypoints that fail as real ones do."""

from __future__ import annotations

import json

import pytest

from sim import images
from sim.pve.testkit import MT_LAYER_TAR, ToolHost, build_oci_archive


@pytest.fixture
def host(tmp_path) -> ToolHost:
    h = ToolHost(tmp_path)
    h.template_cache.mkdir(parents=True)
    return h


def archive(host: ToolHost, ref: str, volumes: list[str]) -> str:
    spec = images.with_facts(images.generic_spec(ref, volumes=volumes), volumes)
    config = images.image_config(spec, "sha256:" + "0" * 64)["config"]
    name = images.split_ref(spec.ref)[1].replace("/", "_") + ".tar"
    build_oci_archive(host.template_cache / name, [images.build_layer(spec)], config,
                      layer_media_type=MT_LAYER_TAR)
    return f"local:vztmpl/{name}"


def create(host, vmid, tpl, store, path, *extra, keepattrs=False, env=None):
    mp = f"{store}:1,mp={path}" + (",keepattrs=1" if keepattrs else "")
    res = host.run("pct", "create", str(vmid), tpl, "--rootfs", f"{store}:1", "--mp0", mp,
                   "--ostype", "unmanaged", *extra)
    assert res.rc == 0, res.stderr
    if env:
        conf = host.conf_dir / f"{vmid}.conf"
        conf.write_text(conf.read_text() + "".join(f"lxc.environment.runtime: {e}\n" for e in env))
    return res


def start(host, vmid) -> tuple[str, str]:
    res = host.run("pct", "start", str(vmid))
    assert res.rc == 0, res.stderr
    status = host.run("pct", "status", str(vmid)).stdout.strip()
    log = host.path(f"/run/pve/ct-{vmid}.stderr")
    return status, log.read_text() if log.exists() else ""


def volume_dir(host, vmid, store):
    if store == "local":
        return host.path(f"/var/lib/vz/images/{vmid}/vm-{vmid}-disk-1.raw")
    return host.state / "sim" / "zfs" / "rpool" / "data" / f"subvol-{vmid}-disk-1"


def test_ext4_volume_has_lost_found_and_zfs_subvol_does_not(host):
    tpl = archive(host, "docker.io/library/nginx:9", ["/usr/share/nginx/html"])
    create(host, 300, tpl, "local", "/usr/share/nginx/html")
    create(host, 301, tpl, "local-zfs", "/usr/share/nginx/html")
    assert [p.name for p in volume_dir(host, 300, "local").iterdir()] == ["lost+found"]
    assert list(volume_dir(host, 301, "local-zfs").iterdir()) == []


@pytest.mark.parametrize("store", ["local", "local-zfs"])
def test_non_root_image_cannot_write_a_new_volume_without_keepattrs(host, store):
    tpl = archive(host, "docker.io/grafana/grafana:12", ["/var/lib/grafana"])
    create(host, 310, tpl, store, "/var/lib/grafana")
    assert "lxc.init.uid: 472" in host.conf_text(310)
    status, log = start(host, 310)
    assert status == "status: stopped"
    assert "GF_PATHS_DATA='/var/lib/grafana' is not writable." in log
    assert not (volume_dir(host, 310, store) / ".homefleet-sim-wrote").exists()


@pytest.mark.parametrize("store", ["local", "local-zfs"])
def test_keepattrs_gives_the_volume_the_image_directory_owner(host, store):
    tpl = archive(host, "docker.io/grafana/grafana:12", ["/var/lib/grafana"])
    create(host, 320, tpl, store, "/var/lib/grafana", keepattrs=True)
    status, log = start(host, 320)
    assert status == "status: running", log
    assert (volume_dir(host, 320, store) / ".homefleet-sim-wrote").read_text() == "uid 472\n"


def test_keepattrs_is_refused_before_pve_container_6_1_2_which_inherited_always(host):
    (host.state / "pve-container-version").write_text("6.1.1\n")
    tpl = archive(host, "docker.io/grafana/grafana:12", ["/var/lib/grafana"])
    res = host.run("pct", "create", "330", tpl, "--rootfs", "local:1",
                   "--mp0", "local:1,mp=/var/lib/grafana,keepattrs=1", "--ostype", "unmanaged")
    assert res.rc != 0 and "keepattrs" in res.stderr
    assert "pve-container: 6.1.1" in host.run("pveversion", "-v").stdout
    create(host, 331, tpl, "local", "/var/lib/grafana")
    assert start(host, 331)[0] == "status: running"      # 6.0.19 - 6.1.1: inherited anyway


def test_postgres_refuses_lost_found_and_works_in_a_subdirectory(host):
    tpl = archive(host, "docker.io/library/postgres:17", ["/var/lib/postgresql/data"])
    create(host, 340, tpl, "local", "/var/lib/postgresql/data", keepattrs=True)
    status, log = start(host, 340)
    assert status == "status: stopped"
    assert 'initdb: error: directory "/var/lib/postgresql/data" exists but is not empty' in log
    assert "lost+found" in log
    create(host, 341, tpl, "local", "/var/lib/postgresql/data", keepattrs=True,
           env=["PGDATA=/var/lib/postgresql/data/pgdata"])
    status, log = start(host, 341)
    assert status == "status: running", log
    assert (volume_dir(host, 341, "local") / "pgdata" / "PG_VERSION").exists()
    host.run("pct", "stop", "341")
    assert start(host, 341)[0] == "status: running"       # initialised: a restart is fine
    create(host, 342, tpl, "local-zfs", "/var/lib/postgresql/data", keepattrs=True)
    assert start(host, 342)[0] == "status: running"       # a ZFS subvolume is empty


def test_redis_8_skips_fixing_data_with_lost_found_unless_keepattrs(host):
    tpl = archive(host, "docker.io/library/redis:8", ["/data"])
    create(host, 350, tpl, "local", "/data")
    status, log = start(host, 350)
    assert status == "status: stopped" and "Can't open the append-only dir /data" in log
    create(host, 351, tpl, "local", "/data", keepattrs=True)
    assert start(host, 351)[0] == "status: running"


def test_non_root_process_cannot_bind_port_80(host):
    tpl = archive(host, "docker.io/filebrowser/filebrowser:v2", ["/database"])
    create(host, 360, tpl, "local-zfs", "/database", keepattrs=True)
    status, log = start(host, 360)
    assert status == "status: stopped" and "listen tcp :80: bind: permission denied" in log
    create(host, 361, tpl, "local-zfs", "/database", keepattrs=True, env=["FB_PORT=8080"])
    assert start(host, 361)[0] == "status: running"


def test_the_image_behaviour_file_is_in_the_layer():
    spec = images.with_facts(images.generic_spec("docker.io/prom/prometheus:v3"), ["/prometheus"])
    dirs, files = images.layer_files(spec)
    behaviour = json.loads(files[images.BEHAVIOUR_FILE][0])
    assert behaviour["writes"][0]["path"] == "/prometheus" and spec.user == "nobody"
