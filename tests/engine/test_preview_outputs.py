"""Issue 19.12: a memory-only update must not make an app's vmid, ip and urls look removed in the
preview. What the stack fixes (a pinned vmid, a static address, the ports' URLs) is shown known."""

import pytest

from .conftest import hosts_config

pytestmark = pytest.mark.engine
STACK = "outs"
APP = {"host": "pve1", "image": "nginx:1.27", "vmid": 620, "memory": 256,
       "networks": [{"ip": "192.0.2.62/24", "gw": "192.0.2.1"}], "ports": [{"port": 80, "scheme": "http"}]}


def stack_outputs(preview: dict) -> dict:
    stack = next(s for s in preview["steps"] if s["urn"].endswith("pulumi:pulumi:Stack::homefleet-" + STACK))
    return (stack.get("newState") or {}).get("outputs") or {}


def test_a_memory_only_update_previews_with_its_outputs_known(fleet, project):
    hosts = hosts_config(fleet)
    project.write_stack(STACK, {"homefleet:hosts": hosts, "homefleet:apps": {"web": APP}})
    project.pulumi("up", "--yes", stack=STACK, check=True)
    done = project.pulumi("stack", "output", "apps", "--json", stack=STACK, check=True).json()["web"]

    project.write_stack(STACK, {"homefleet:hosts": hosts, "homefleet:apps": {"web": {**APP, "memory": 512}}})
    preview = project.pulumi("preview", "--json", stack=STACK, check=True).json()
    ops = {s["urn"].split("::")[-1]: s["op"] for s in preview["steps"]}
    assert ops["web"] == "update", ops
    text = project.pulumi("preview", stack=STACK, check=True).stdout
    # Before: `~ apps: {~ web: {host, vmid}}` -- ip and urls looked removed. Now nothing the
    # update does not change is shown as changed: the outputs section has no `apps` change.
    assert "~ apps" not in text and "ip:" not in text, text
    assert done["vmid"] == 620 and done["urls"] == ["http://192.0.2.62:80"]
    project.pulumi("destroy", "--yes", stack=STACK, check=True)
