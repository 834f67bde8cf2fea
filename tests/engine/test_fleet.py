"""A fleet stack: 3 hosts x 10 catalog apps planned and applied, one template per (host, image),
and one host's failure not stopping the others (`pulumi up --continue-on-error`)."""

import json

import pytest

from sim.engine import LocalProject, host_entries
from sim.testing import running_fleet

from .helpers import QUICK_SETTLE, ct_list, templates

pytestmark = pytest.mark.engine

PACKAGES = ["jellyfin", "navidrome", "vaultwarden", "uptime-kuma", "mealie",
            "freshrss", "filebrowser", "syncthing", "grafana", "nginx"]


def fleet_apps(hosts):
    apps = {}
    for host in hosts:
        for package in PACKAGES[:8]:
            apps[f"{package}-{host}"] = {"package": package, "host": host, "memory": 128, "deleteData": True}
        # two more apps on every host that reuse images already there: templates are shared
        apps[f"web-a-{host}"] = {"image": "docker.io/library/nginx:1.28.0", "host": host, "memory": 64, "deleteData": True}
        apps[f"web-b-{host}"] = {"package": "nginx", "host": host, "memory": 64, "deleteData": True}
    return apps


@pytest.fixture(scope="module")
def fleet3(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet3"), hosts=3) as fleet:
        yield fleet


def test_three_hosts_by_ten_apps_with_shared_templates(fleet3, tmp_path):
    project = LocalProject.create(tmp_path / "p")
    hosts = json.loads(fleet3.hosts_json.read_text())["hosts"]
    apps = fleet_apps(["pve1", "pve2", "pve3"])
    assert len(apps) == 30
    project.write_stack("fleet", {"homefleet:hosts": host_entries(hosts, health_settle=QUICK_SETTLE), "homefleet:apps": apps})
    preview = project.pulumi("preview", "--json", stack="fleet", check=True).json()
    creates = [s["urn"].split("::")[-2].split(":")[-1] for s in preview["steps"] if s["op"] == "create"]
    assert creates.count("ProxmoxCT") == 30
    assert creates.count("OciTemplate") == 27, "9 images per host (nginx twice shares one), 3 hosts"
    project.pulumi("up", "--yes", stack="fleet", check=True)
    for host in fleet3.hosts:
        rows = ct_list(host)
        assert len(rows) == 10 and all(r["status"] == "running" for r in rows), rows
        assert len(templates(host)) == 9
    outputs = project.pulumi("stack", "output", "--json", stack="fleet", check=True).json()
    assert sorted(outputs["hosts"]["pve2"]["apps"]) == sorted(a for a in apps if a.endswith("-pve2"))
    assert outputs["apps"]["jellyfin-pve3"]["urls"][0].endswith(":8096")
    assert project.pulumi("preview", "--expect-no-changes", stack="fleet").ok
    project.pulumi("destroy", "--yes", stack="fleet", check=True)


def test_one_unreachable_host_does_not_stop_the_others(fleet3, tmp_path):
    project = LocalProject.create(tmp_path / "p")
    hosts = json.loads(fleet3.hosts_json.read_text())["hosts"]
    entries = host_entries(hosts, health_settle=QUICK_SETTLE)
    entries["pve3"]["port"] = 1  # nothing listens there
    apps = {name: app for name, app in fleet_apps(["pve1", "pve2", "pve3"]).items()
            if name.startswith(("navidrome", "freshrss", "web-a"))}
    project.write_stack("partial", {"homefleet:hosts": entries, "homefleet:apps": apps})
    run = project.pulumi("up", "--yes", "--continue-on-error", stack="partial")
    assert not run.ok
    assert "host pve3: cannot connect to 127.0.0.1:1" in run.stdout
    for name in ("pve1", "pve2"):
        assert {r["name"] for r in ct_list(fleet3[name])} == {f"navidrome-{name}", f"freshrss-{name}", f"web-a-{name}"}
    assert ct_list(fleet3["pve3"]) == []
    entries["pve3"]["port"] = fleet3["pve3"].port
    project.write_stack("partial", {"homefleet:hosts": entries, "homefleet:apps": apps})
    project.pulumi("up", "--yes", stack="partial", check=True)
    assert len(ct_list(fleet3["pve3"])) == 3
    project.pulumi("destroy", "--yes", stack="partial", check=True)
