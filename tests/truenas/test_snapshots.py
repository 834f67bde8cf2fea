"""ZFS snapshots on TrueNAS: the fake middleware's methods per version (sim/truenas/datasets.py),
the pure builders (providers/hosts/zfs_snapshots.py), the health reading
(providers/truenas_health.py), and the provider refusing a snapshot that would roll back
someone else's data, before anything changes."""

from __future__ import annotations

import json

import pytest

from providers.errors import HostCommandError
from providers.hosts import zfs_snapshots as zfs
from providers.truenas_app import TrueNASAppProvider
from providers.truenas_health import healthy
from sim.truenas import datasets

from .test_provider import midclt, props, query
from .test_sim_midclt import Nas


# ---------------------------------------------------------------- the fake middleware

@pytest.fixture
def nas(tmp_path):
    n = Nas(tmp_path, "25.04")
    datasets.add(n.state, "tank/apps/web")
    datasets.add(n.state, "tank/apps/web/cache")
    return n


def test_snapshot_and_rollback_restore_the_dataset_but_not_its_child(nas):
    data = datasets.folder(nas.state, "/mnt/tank/apps/web")
    (data / "db").write_text("v1")
    (data / "cache" / "c").write_text("c1")
    snap = nas.call("zfs.snapshot.create", {"dataset": "tank/apps/web", "name": "before"})
    assert snap["id"] == "tank/apps/web@before" and snap["snapshot_name"] == "before"
    (data / "db").write_text("v2")
    (data / "new").write_text("x")
    (data / "cache" / "c").write_text("c2")
    assert nas.call("zfs.snapshot.rollback", "tank/apps/web@before", {"recursive": False}) in ("", None, "null")
    assert (data / "db").read_text() == "v1" and not (data / "new").exists()
    assert (data / "cache" / "c").read_text() == "c2"          # a child dataset is not part of it


def test_rollback_past_a_newer_snapshot_is_refused_without_recursive(nas):
    nas.call("zfs.snapshot.create", {"dataset": "tank/apps/web", "name": "a"})
    nas.call("zfs.snapshot.create", {"dataset": "tank/apps/web", "name": "b"})
    rc, _, err = nas.run("call", "zfs.snapshot.rollback", "tank/apps/web@a")
    assert rc == 1
    assert "Failed to rollback snapshot: cannot rollback to 'tank/apps/web@a': more recent snapshots" in err
    assert "tank/apps/web@b" in err
    assert [s["id"] for s in nas.call("zfs.snapshot.query", [["dataset", "=", "tank/apps/web"]])] == \
        ["tank/apps/web@a", "tank/apps/web@b"]


def test_create_errors_as_the_middleware_words_them(nas):
    rc, _, err = nas.run("call", "zfs.snapshot.create", json.dumps({"dataset": "tank/apps/web"}))
    assert rc == 1 and "You must specify either name or naming schema" in err
    rc, _, err = nas.run("call", "zfs.snapshot.create", json.dumps({"dataset": "tank/nope", "name": "x"}))
    assert rc == 1 and "Failed to snapshot tank/nope@x" in err
    nas.call("zfs.snapshot.create", {"dataset": "tank/apps/web", "name": "x"})
    rc, _, err = nas.run("call", "zfs.snapshot.create", json.dumps({"dataset": "tank/apps/web", "name": "x"}))
    assert rc == 1 and "[EEXIST]" in err


def test_25_10_names_them_pool_snapshot(tmp_path):
    nas = Nas(tmp_path, "25.10")
    datasets.add(nas.state, "tank/apps/web")
    rc, _, err = nas.run("call", "zfs.snapshot.create", json.dumps({"dataset": "tank/apps/web", "name": "x"}))
    assert rc == 1 and "Method does not exist" in err
    assert nas.call("pool.snapshot.create", {"dataset": "tank/apps/web", "name": "x"})["id"] == "tank/apps/web@x"
    assert zfs.method("create", (25, 10, 0)) == "pool.snapshot.create"
    assert zfs.method("rollback", (24, 10, 2, 4)) == "zfs.snapshot.rollback"


# ---------------------------------------------------------------- builders and health

def test_the_dataset_of_a_host_path_is_the_deepest_mountpoint():
    config = {"services": {"a": {"image": "x", "volumes": ["/mnt/tank/apps/web/db:/db", "named:/n",
                                                           {"type": "bind", "source": "/mnt/tank/media",
                                                            "target": "/m"}]}}}
    paths = zfs.bind_sources(config)
    assert paths == ["/mnt/tank/apps/web/db", "/mnt/tank/media"]
    entries = [{"id": "tank", "mountpoint": "/mnt/tank"}, {"id": "tank/apps/web", "mountpoint": "/mnt/tank/apps/web"},
               {"id": "tank/apps/webx", "mountpoint": "/mnt/tank/apps/webx"}]
    assert zfs.dataset_of("/mnt/tank/apps/web/db", entries) == "tank/apps/web"
    assert zfs.dataset_of("/mnt/tank/apps/webx2", entries) == "tank"
    assert zfs.dataset_of("/srv/x", entries) is None
    assert "/mnt/tank/apps" in zfs.dataset_query(paths)[0][0][2]


def test_only_homefleets_own_snapshots_of_the_app_are_pruned():
    found = [{"id": "tank/a@homefleet-web-20261203-100000"}, {"id": "tank/a@auto-2026-12-03"},
             {"id": "tank/a@homefleet-web-api-20261203-090000"}, {"id": "tank/a@homefleet-web-20261202-100000"},
             {"id": "tank/b@homefleet-web-20261201-100000"}]
    assert zfs.ours(found, "web", "tank/a") == ["tank/a@homefleet-web-20261202-100000",
                                                "tank/a@homefleet-web-20261203-100000"]
    assert zfs.ours(found, "web-api", "tank/a") == ["tank/a@homefleet-web-api-20261203-090000"]


def _entry(state: str, *containers) -> dict:
    return {"state": state, "active_workloads": {"container_details": [
        {"service_name": n, "state": s} for n, s in containers]}}


def test_healthy_reads_the_container_states():
    config = {"services": {"web": {"image": "a", "restart": "always"}, "init": {"image": "b"}}}
    assert healthy(_entry("RUNNING", ("web", "running"), ("init", "exited")), config)
    assert not healthy(_entry("RUNNING", ("web", "exited"), ("init", "running")), config)    # a crash loop
    assert not healthy(_entry("DEPLOYING", ("web", "starting")), config)                   # unhealthy or not yet
    assert not healthy(_entry("STOPPED"), config)
    assert not healthy(None, config)


# ---------------------------------------------------------------- provider refusals

COMPOSE = "services:\n  web:\n    image: docker.io/library/nginx:{tag}\n    volumes: ['{path}:/data']\n"


def test_a_snapshot_that_would_roll_back_other_data_is_refused_before_any_change(nas_fleet):
    host = nas_fleet["nas1"]
    provider = TrueNASAppProvider()
    datasets.add(host.state, "tank/shared")
    made = []
    try:
        for app, path in (("rootds", "/mnt/tank/rootds"), ("share-a", "/mnt/tank/shared/a"),
                          ("share-b", "/mnt/tank/shared/b")):
            p = props(host, app, COMPOSE.format(tag="1.27.3", path=path), snapshot_datasets=True,
                      health_timeout=30)
            made.append(provider.create(p).outs)
        for outs, why in ((made[0], "is in the root dataset of pool tank"),
                          (made[1], "the dataset tank/shared also holds /mnt/tank/shared/b of the app share-b")):
            news = {**outs, "compose": COMPOSE.format(tag="1.27.4", path=outs["compose"].split("'")[1].split(":")[0])}
            with pytest.raises(HostCommandError) as err:
                provider.update(outs["app"], outs, news)
            assert why in str(err.value)
            stored = midclt(host, "app.config", outs["app"])["services"]["web"]["image"]
            assert stored.startswith("docker.io/library/nginx:1.27.3@")                   # nothing changed
            # (other tests on this shared host leave snapshots of their own datasets)
            taken = [s["name"] for s in midclt(host, "zfs.snapshot.query", [])
                     if s["dataset"] == "tank" or s["dataset"].startswith("tank/shared")]
            assert not taken, taken
    finally:
        for outs in made:
            provider.delete(outs["app"], outs)
    assert query(host, "rootds") is None
