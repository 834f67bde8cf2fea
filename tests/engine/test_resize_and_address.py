"""Growing a disk is `pct resize` in place (no recreate); shrinking is refused at preview;
a host that only changed address stays the same host (an update, not a replacement)."""

import pytest

from .conftest import hosts_config
from .helpers import ct_by_name, ct_config, tool_count, tools_since

pytestmark = pytest.mark.engine
STACK = "grow"
APP = {"host": "pve1", "image": "nginx:1.27", "vmid": 500, "disk": 2, "volumes": [{"path": "/data", "size": 1}],
       "deleteData": True}


def deploy(project, fleet, app, hosts=None, check=True):
    project.write_stack(STACK, {"homefleet:hosts": hosts or hosts_config(fleet), "homefleet:apps": {"web": app}})
    return project.pulumi("up", "--yes", stack=STACK, check=check)


def test_growing_rootfs_and_a_volume_resizes_in_place(fleet, project):
    deploy(project, fleet, APP)
    start = tool_count(fleet["pve1"])
    deploy(project, fleet, {**APP, "disk": 5, "volumes": [{"path": "/data", "size": 3}]})
    ran = tools_since(fleet["pve1"], start)
    assert ["pct", "resize", "500", "rootfs", "5G"] in ran and ["pct", "resize", "500", "mp0", "3G"] in ran, ran
    assert not any(a[:2] in (["pct", "create"], ["pct", "destroy"], ["pct", "shutdown"]) for a in ran), ran
    conf = ct_config(fleet["pve1"], 500)
    assert "size=5G" in conf["rootfs"] and "size=3G" in conf["mp0"]
    assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok


def test_shrinking_is_refused_before_any_host_call(fleet, project):
    start = tool_count(fleet["pve1"])
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet),
                                "homefleet:apps": {"web": {**APP, "disk": 3, "volumes": [{"path": "/data", "size": 3}]}}})
    run = project.pulumi("preview", stack=STACK)
    assert not run.ok and "PVE cannot shrink a disk" in run.stdout + run.stderr
    assert tools_since(fleet["pve1"], start) == []


def test_a_new_address_for_the_same_host_is_an_update(fleet, project):
    hosts = hosts_config(fleet)
    hosts["pve1"]["address"] = "localhost"  # the same machine under another name
    project.write_stack(STACK, {"homefleet:hosts": hosts,
                                "homefleet:apps": {"web": {**APP, "disk": 5, "volumes": [{"path": "/data", "size": 3}]}}})
    preview = project.pulumi("preview", "--json", stack=STACK, check=True).json()
    ops = {s["urn"].split("::")[-1]: s["op"] for s in preview["steps"]}
    assert ops["web"] == "update" and "replace" not in ops.values(), ops
    project.pulumi("up", "--yes", stack=STACK, check=True)
    assert ct_by_name(fleet["pve1"], "web")["vmid"] == 500
    project.pulumi("destroy", "--yes", stack=STACK, check=True)
