"""Issue 19.11 (Proxmox): `pulumi preview --refresh --diff` of a drifted CT printed every property
(146 lines for one CT) and marked none. It now shows just what the host changed, marked."""

import pytest

from sim.testing import ssh_run

from .conftest import hosts_config

pytestmark = pytest.mark.engine
STACK = "drift"
APP = {"host": "pve1", "image": "nginx:1.27", "vmid": 630, "memory": 256}


def test_drift_is_shown_compactly_and_marked(fleet, project):
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": {"web": APP}})
    project.pulumi("up", "--yes", stack=STACK, check=True)
    rc, _out, err = ssh_run(fleet["pve1"], ["pct", "set", "630", "--memory", "128"])
    assert rc == 0, err

    run = project.pulumi("preview", "--refresh", "--diff", stack=STACK, check=True)
    print(run.stdout)
    web = run.stdout[run.stdout.index("ProxmoxCT: (update)"):]
    web = web[:web.index("\n\n")] if "\n\n" in web else web
    marked = [line for line in web.splitlines() if line.lstrip().startswith(("~", "-", "+"))]
    assert any("memory" in line for line in marked), web
    assert len(web.splitlines()) < 20, web
    up = project.pulumi("up", "--yes", "--refresh", stack=STACK, check=True)
    rc, out, _ = ssh_run(fleet["pve1"], ["pct", "config", "630"])
    assert "memory: 256" in out, up.stdout
    project.pulumi("destroy", "--yes", stack=STACK, check=True)
