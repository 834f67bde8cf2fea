"""The real Pulumi engine drives the providers through a whole lifecycle on two simulated hosts:
preview -> up -> no-change preview -> edit one app -> preview --json shows exactly that
update -> up -> drift behind Pulumi's back -> refresh sees it -> destroy leaves hosts empty.
"""

import json

import pytest

from sim.testing import ssh_run

from .conftest import hosts_config
from .helpers import command_count, commands_since, ct_by_name, ct_config, ct_list, templates, tool_count, tools_since

pytestmark = pytest.mark.engine
STACK = "lifecycle"


def apps(web_memory=256):
    return {
        "web": {"host": "pve1", "image": "docker.io/library/nginx:1.27", "memory": web_memory,
                "volumes": [{"path": "/data", "size": 1}], "env": {"GREETING": "hello world"}, "deleteData": True,
                "ports": [{"port": 80, "scheme": "http"}]},
        "cache": {"host": "pve2", "image": "nginx:1.27", "memory": 128},
        "tool": {"host": "pve2", "image": "docker.io/library/alpine:3.20", "vmid": 250},
    }


@pytest.fixture(scope="module")
def deployed(fleet, project):
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": apps()})
    before = {h.name: command_count(h) for h in fleet.hosts}
    preview = project.pulumi("preview", stack=STACK, check=True)
    return {"preview": preview, "commands_before": before}


def test_preview_plans_templates_and_cts_without_touching_hosts(fleet, deployed):
    out = deployed["preview"].stdout
    assert out.count("homefleet:ProxmoxCT") == 3 and "+ 7 to create" in out, out
    for host in fleet.hosts:
        assert command_count(host) == deployed["commands_before"][host.name], "preview must not run host commands"
        assert ct_list(host) == []


def test_up_creates_running_cts_with_the_spec(fleet, project, deployed):
    up = project.pulumi("up", "--yes", stack=STACK, check=True)
    assert "7 created" in up.stdout, up.stdout
    pve1, pve2 = fleet["pve1"], fleet["pve2"]
    web = ct_by_name(pve1, "web")
    assert web["status"] == "running"
    conf = ct_config(pve1, web["vmid"])
    assert conf["memory"] == "256"
    assert "GREETING=hello world" in conf["env"]
    assert any(e.startswith("PATH=") for e in conf["env"]), "the image's PATH must survive the env write"
    assert conf["mp0"].startswith("local-zfs:subvol-") and "mp=/data" in conf["mp0"]
    assert "managed-by: homefleet stack=lifecycle app=web" in conf["description"]
    assert {row["name"] for row in ct_list(pve2)} == {"cache", "tool"}
    assert ct_by_name(pve2, "tool")["vmid"] == 250
    # one template per (host, image): pve2's two apps use two images, pve1's one
    assert len(templates(pve1)) == 1 and len(templates(pve2)) == 2
    outputs = project.pulumi("stack", "output", "--json", stack=STACK, check=True).json()
    assert outputs["apps"]["web"]["vmid"] == web["vmid"]
    assert outputs["apps"]["web"]["urls"] == [f"http://{outputs['apps']['web']['ip']}:80"]


def test_second_preview_has_no_changes_and_sends_no_commands(fleet, project):
    before = {h.name: command_count(h) for h in fleet.hosts}
    run = project.pulumi("preview", "--expect-no-changes", stack=STACK)
    assert run.ok, run
    assert {h.name: command_count(h) for h in fleet.hosts} == before


def test_memory_edit_previews_as_exactly_one_update(fleet, project):
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": apps(web_memory=512)})
    preview = project.pulumi("preview", "--json", stack=STACK, check=True).json()
    changed = [s for s in preview["steps"] if s["op"] != "same"]
    assert [(s["op"], s["urn"].split("::")[-1]) for s in changed] == [("update", "web")], changed
    assert preview["changeSummary"] == {"same": 6, "update": 1} or preview["changeSummary"].get("update") == 1


def test_up_applies_the_memory_live_without_restart(fleet, project):
    pve1 = fleet["pve1"]
    vmid = ct_by_name(pve1, "web")["vmid"]
    start, tools_start = command_count(pve1), tool_count(pve1)
    up = project.pulumi("up", "--yes", stack=STACK, check=True)
    assert "1 updated" in up.stdout, up.stdout
    assert ct_config(pve1, vmid)["memory"] == "512"
    sent = commands_since(pve1, start)
    assert any(f"pct set {vmid} --memory 512" in c for c in sent), sent
    ran = tools_since(pve1, tools_start)
    assert ["pct", "set", str(vmid), "--memory", "512"] in ran, ran
    assert not any(argv[:2] in (["pct", "start"], ["pct", "shutdown"], ["pct", "reboot"]) for argv in ran), \
        "memory is hotplugged: no restart"
    assert ct_by_name(pve1, "web")["status"] == "running"


def test_refresh_sees_drift_and_up_repairs_it(fleet, project):
    pve1 = fleet["pve1"]
    vmid = ct_by_name(pve1, "web")["vmid"]
    rc, _, err = ssh_run(pve1, ["pct", "set", str(vmid), "--memory", "300"])
    assert rc == 0, err
    refresh = project.pulumi("refresh", "--yes", stack=STACK, check=True)
    assert "1 updated" in refresh.stdout or "~ 1" in refresh.stdout, refresh.stdout
    state = project.pulumi("stack", "export", stack=STACK, check=True).json()
    web = next(r for r in state["deployment"]["resources"] if r["urn"].endswith("::web"))
    assert web["outputs"]["observed"]["memory"] == "300"
    preview = project.pulumi("preview", "--json", stack=STACK, check=True).json()
    assert [s["op"] for s in preview["steps"] if s["op"] != "same"] == ["update"]
    project.pulumi("up", "--yes", stack=STACK, check=True)
    assert ct_config(pve1, vmid)["memory"] == "512"
    assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok


def test_refresh_of_a_ct_deleted_by_hand_drops_it_from_state(fleet, project):
    pve2 = fleet["pve2"]
    ssh_run(pve2, ["pct", "stop", "250"])
    rc, _, err = ssh_run(pve2, ["pct", "destroy", "250", "--purge", "1"])
    assert rc == 0, err
    project.pulumi("refresh", "--yes", stack=STACK, check=True)
    state = project.pulumi("stack", "export", stack=STACK, check=True).json()
    assert not any(r["urn"].endswith("::tool") for r in state["deployment"]["resources"])
    project.pulumi("up", "--yes", stack=STACK, check=True)
    assert ct_by_name(pve2, "tool")["vmid"] == 250


def test_destroy_leaves_the_hosts_empty(fleet, project):
    run = project.pulumi("destroy", "--yes", stack=STACK)
    assert run.ok, run
    for host in fleet.hosts:
        assert ct_list(host) == [], f"{host.name} still has CTs"
        assert templates(host) == [], f"{host.name} still has templates"
