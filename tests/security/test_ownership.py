"""Ownership and safety, through the real providers over real SSH:

- a CT or TrueNAS app without our marker (or with another stack's) is never updated,
  replaced, taken over or deleted, and stays exactly as it was;
- deleting an app keeps its data volume unless `deleteData` is set;
- a host whose key is unknown or changed is refused before any command runs.
"""

from __future__ import annotations

import copy
import json
import time

import pytest

from providers.errors import HostCommandError, OwnershipError
from providers.oci_template import OciTemplateProvider
from providers.proxmox_ct import ProxmoxCTProvider
from providers.transport import TransportError, close_all
from providers.truenas_app import TrueNASAppProvider
from sim.testing import commands, ssh_run

from .faultkit import configs, data_owner, marked, put_data
from .live import target
from .test_faults import NGINX, _props

STACK = "owner"


@pytest.fixture(scope="module")
def template(security_fleet):
    host = security_fleet["pve1"]
    outs = OciTemplateProvider().create({"host": target(host), "image": NGINX, "pull_ref": NGINX, "storage": "local"}).outs
    return outs["volid"]


def _foreign_ct(host, vmid: int, template: str, description: str = "", tags: str = "") -> dict:
    argv = ["pct", "create", str(vmid), template, "--hostname", f"foreign{vmid}", "--rootfs", "local-zfs:1",
            "--ostype", "unmanaged", "--memory", "64"]
    argv += ["--description", description] if description else []
    argv += ["--tags", tags] if tags else []
    rc, _, err = ssh_run(host, argv)
    assert rc == 0, err
    return configs(host)[vmid]


@pytest.mark.parametrize("kind, description, tags", [
    ("no marker", "", ""),
    ("another stack's marker", "managed-by: homefleet stack=other app=app", "homefleet"),
    ("our marker text without the tag", "managed-by: homefleet stack=owner app=app", ""),
])
def test_a_ct_homefleet_does_not_own_is_never_changed_replaced_or_deleted(security_fleet, template, kind,
                                                                          description, tags):
    host = security_fleet["pve1"]
    vmid = {"no marker": 7401, "another stack's marker": 7402, "our marker text without the tag": 7403}[kind]
    before = _foreign_ct(host, vmid, template, description, tags)
    props = {**_props(host, "app", template, vmid=vmid), "stack": STACK}
    outs = {**props, "vmid": vmid, "observed": {}, "image_env": {}}
    provider = ProxmoxCTProvider()
    try:
        with pytest.raises(OwnershipError, match=f"refusing to delete CT {vmid}"):
            provider.delete("", copy.deepcopy(outs))
        with pytest.raises(OwnershipError, match=f"refusing to update CT {vmid}"):
            provider.update("", copy.deepcopy(outs), {**props, "memory": 512})
        with pytest.raises(OwnershipError, match=f"refusing to update CT {vmid}"):  # a replacement in place
            provider.update("", copy.deepcopy(outs), {**props, "template": template.replace("nginx", "alpine")})
        with pytest.raises(HostCommandError, match="already exists"):  # a create never takes it over
            provider.create(copy.deepcopy(props))
        assert configs(host)[vmid] == before, "the foreign CT changed"
    finally:
        ssh_run(host, ["pct", "destroy", str(vmid), "--purge", "1"])


def test_a_truenas_app_homefleet_does_not_own_is_never_changed_or_deleted(security_fleet, tmp_path):
    nas = security_fleet["nas1"]
    compose = "services:\n  web:\n    image: docker.io/library/nginx:1.27\n"
    payload = {"app_name": "manual", "custom_app": True, "custom_compose_config_string": compose}
    rc, out, err = ssh_run(nas, ["midclt", "call", "app.create", json.dumps(payload)])
    assert rc == 0, err
    job = int(out.strip())
    for _ in range(100):
        rc, out, _ = ssh_run(nas, ["midclt", "call", "core.get_jobs", json.dumps([["id", "=", job]])])
        if json.loads(out)[0]["state"] in ("SUCCESS", "FAILED"):
            break
        time.sleep(0.1)

    def stored():
        rc, out, err = ssh_run(nas, ["midclt", "call", "app.config", "manual"])
        assert rc == 0, err
        return json.loads(out)

    before = stored()
    props = {"host": target(nas), "stack": STACK, "app": "manual", "compose": compose.replace("1.27", "1.28"),
             "generation": "24.10", "delete_data": True}
    provider = TrueNASAppProvider()
    with pytest.raises(OwnershipError, match="refusing to delete app manual"):
        provider.delete("", dict(props))
    with pytest.raises(OwnershipError, match="refusing to update app manual"):
        provider.update("", {**props, "compose_digest": "sha256:x"}, dict(props))
    with pytest.raises(OwnershipError, match="refusing to take over app manual"):
        provider.create(dict(props))
    assert stored() == before, "the app homefleet does not own was changed"


@pytest.mark.parametrize("delete_data", [False, True])
def test_deleting_an_app_keeps_its_data_unless_delete_data_is_set(security_fleet, template, delete_data):
    host = security_fleet["pve1"]
    app = f"keep{int(delete_data)}"
    props = {**_props(host, app, template), "stack": STACK}
    outs = ProxmoxCTProvider().create(copy.deepcopy(props)).outs
    token = f"owner-data-{app}"
    put_data(host, outs["vmid"], token)
    ProxmoxCTProvider().delete("", {**outs, "delete_data": delete_data})
    found = marked(host, STACK, app)
    assert found["cts"] == []
    if delete_data:
        assert found["holders"] == [] and data_owner(host, token) == [], "deleteData: the volume is gone with it"
    else:
        assert len(found["holders"]) == 1 and len(data_owner(host, token)) == 1, "the data must be kept"
        ssh_run(host, ["pct", "destroy", str(found["holders"][0]), "--purge", "1"])


OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIARUcEogoIHQL+gV9Vzjosr1Caz86FOIhza+Z1qvIe4q"


@pytest.mark.parametrize("case", ["pinned key differs", "unknown host", "known_hosts entry changed"])
def test_an_unknown_or_changed_host_key_is_refused_before_anything_runs(security_fleet, template, tmp_path, case):
    host = security_fleet["pve1"]
    known = tmp_path / "known_hosts"
    props = _props(host, "hk", template)
    bad = dict(props["host"])
    bad.pop("host_key")
    bad["known_hosts"] = str(known)
    known.write_text("")
    if case == "pinned key differs":
        bad["host_key"] = OTHER_KEY
    elif case == "known_hosts entry changed":
        known.write_text(f"[{host.address}]:{host.port} {OTHER_KEY}\n")
    close_all()
    before = len(commands(host))
    words = {"pinned key differs": "host key mismatch", "unknown host": "unknown host key",
             "known_hosts entry changed": "changed"}[case]
    for call in (lambda: ProxmoxCTProvider().create({**props, "host": bad}),
                 lambda: OciTemplateProvider().create({"host": bad, "image": NGINX, "pull_ref": NGINX, "storage": "local"})):
        with pytest.raises(TransportError, match=words) as caught:
            call()
        assert "host pve1" in str(caught.value)
    assert len(commands(host)) == before, "a command ran on a host whose key was not the expected one"
