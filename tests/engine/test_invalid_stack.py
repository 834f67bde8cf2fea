"""An invalid stack fails `pulumi preview` and `up` with the located error, no traceback,
and no command reaches any host."""

import pytest

from .conftest import hosts_config
from .helpers import command_count

pytestmark = pytest.mark.engine


def test_invalid_stack_is_refused_with_located_errors_and_no_host_call(fleet, project):
    hosts = hosts_config(fleet)
    hosts["pve1"]["storag"] = "local-zfs"
    project.write_stack("bad", {"homefleet:hosts": hosts, "homefleet:apps": {
        "web": {"host": "pve1", "image": "nginx:1.27", "memory": "4X"},
        "db": {"host": "pve9", "package": "postgres"},
    }})
    before = {h.name: command_count(h) for h in fleet.hosts}
    for command in (["preview"], ["up", "--yes"]):
        run = project.pulumi(*command, stack="bad")
        text = run.stdout + run.stderr
        assert not run.ok
        assert "stacks/Pulumi.bad.yaml: homefleet:hosts.pve1.storag: unknown key. Remove it or fix its spelling" in text
        assert "stacks/Pulumi.bad.yaml: homefleet:apps.web.memory: '4X' is not a size; write e.g. 4096, '512M' or '4G'" in text
        assert "stacks/Pulumi.bad.yaml: homefleet:apps.db.host: unknown host 'pve9' (hosts: pve1, pve2). Use a host declared under homefleet:hosts" in text
        assert "Traceback" not in text and "RuntimeWarning" not in text
    assert {h.name: command_count(h) for h in fleet.hosts} == before
