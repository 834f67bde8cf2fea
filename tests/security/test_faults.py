"""A fault at every step of create, update, upgrade and delete, through the real providers over
real SSH: the SSH connection dropped, a command failing, a timeout, the host unreachable, a
full template storage.

Each point checks that the error names the host and the step, that the host is as before or
as after (one CT per app at most, no CT or holder left over, the app's data in exactly one
volume that an owned CT holds, no partial archive), and that running the same operation
again, as the next `pulumi up` does (a failed create leaves no state, a failed update or
delete leaves the old state), converges.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Callable, Optional

import pytest

from homefleet.config import load
from homefleet.plan import make_plan
from providers import ct_create
from providers.hosts import ctops
from providers.oci_template import OciTemplateProvider
from providers.proxmox_ct import ProxmoxCTProvider
from providers.transport import close_all
from providers.transport.quoting import remote_command_line
from providers.truenas_app import TrueNASAppProvider
from sim.testing import clear_faults, reset_host, set_faults, ssh_run

from . import figures
from .cases import REPO
from .faultkit import (clear_tool_faults, configs, data_owner, dump, fail_tool, locks, marked, put_data, status,
                       template_leftovers, templates)
from .live import target

STACK = "faults"
NGINX = "docker.io/library/nginx:1.27"
ALPINE = "docker.io/library/alpine:3.20"


@pytest.fixture(scope="module")
def host(security_fleet):
    host = security_fleet["pve1"]
    yield host
    reset_host(host)
    clear_tool_faults(host)


def _props(host, app: str, image_volid: str, **extra) -> dict:
    raw = {"hosts": {"pve1": {"kind": "proxmox", "address": host.address, "port": host.port,
                              "hostKey": host.host_key, "keyFile": host.client_key,
                              "storage": "local-zfs", "templateStorage": "local"}},
           "apps": {app: {"host": "pve1", "image": NGINX, "memory": 128, "env": {"GREETING": "hello"},
                          "volumes": [{"path": "/data", "size": 1}], **extra}}}
    stack, catalog = load(STACK, raw, project_dir=str(REPO))
    props = make_plan(STACK, stack, catalog, project_dir=str(REPO)).cts[0].props
    return {**props, "template": image_volid, "secret_env": {"TOKEN": "s3cret"}}


@pytest.fixture(scope="module")
def images(host):
    out = {}
    for image in (NGINX, ALPINE):
        props = {"host": target(host), "image": image, "pull_ref": image, "storage": "local"}
        out[image] = OciTemplateProvider().create(props).outs
    yield out
    for outs in out.values():
        OciTemplateProvider().delete("", outs)


# ---------------------------------------------------------------- the faults

@dataclass
class Fault:
    kind: str            # ssh | tool | timeout | unreachable
    match: str = ""      # regex on the command line (ssh, timeout) or glob on "tool args" (tool)
    action: str = "fail"
    message: str = "injected failure"

    def arm(self, host) -> None:
        if self.kind == "ssh":
            set_faults(host, [{"match": self.match, "action": self.action, "stderr": self.message, "exit": 1}])
        elif self.kind == "timeout":
            set_faults(host, [{"match": self.match, "action": "hang"}])
        elif self.kind == "tool":
            fail_tool(host, self.match, 1, self.message)

    def disarm(self, host) -> None:
        clear_faults(host)
        clear_tool_faults(host)


def _unreachable(props: dict) -> dict:
    return {**props, "host": {**props["host"], "port": 1}}  # nothing listens on port 1


def _expect_failure(call: Callable, words: tuple) -> str:
    return _expect_failure_on(None, call, words)


def _expect_failure_on(host, call: Callable, words: tuple) -> str:
    with pytest.raises(Exception) as caught:
        call()
    message = str(caught.value)
    name = host.name if host else "pve1"
    assert f"host {name}" in message, f"the error does not name the host: {message[:500]}"
    assert any(w in message for w in words), f"the error does not name the step ({words}): {message[:500]}"
    assert "s3cret" not in message
    return message


def _invariants(host, app: str, token: Optional[str] = None) -> dict:
    """As before or as after: never two CTs or two holders for the app, no lock, the data kept."""
    found = marked(host, STACK, app)
    assert len(found["cts"]) <= 1, f"two CTs for {app}: {found}\n{dump(host)}"
    assert len(found["holders"]) <= 1, f"two holders for {app}: {found}\n{dump(host)}"
    assert not locks(host), f"a CT is left locked: {locks(host)}"
    assert not template_leftovers(host), f"partial archives left: {template_leftovers(host)}"
    if token:
        owners = data_owner(host, token)
        assert len(owners) == 1, f"the app's data is in {owners} volumes"
        owned = [c for v in found["cts"] + found["holders"] for c in [configs(host)[v]]]
        assert any(owners[0] in str(conf) for conf in owned), f"the data volume {owners} belongs to no CT of {app}"
    return found


def _counted(point: str) -> None:
    figures.add("faults.points")
    figures.add("faults.converged")


# ---------------------------------------------------------------- template

TEMPLATE_POINTS = {
    "inspect fails": (Fault("ssh", r"skopeo inspect --no-tags", message="unauthorized: authentication required"), ("resolving",)),
    "connection dropped during the pull": (Fault("ssh", r"skopeo copy", action="drop"), ("connection was lost",)),
    "full template storage": (Fault("tool", "skopeo copy *", message="writing blob: write /var/lib/vz/template/cache/"
                                    "x.tar: no space left on device"), ("pulling", "no space left")),
    "host unreachable": (Fault("unreachable"), ("cannot connect",)),
}


@pytest.mark.parametrize("point", list(TEMPLATE_POINTS))
def test_a_template_pull_fails_cleanly_and_the_next_run_pulls_it(host, point):
    fault, words = TEMPLATE_POINTS[point]
    image = "docker.io/library/busybox:1.36"
    props = {"host": target(host), "image": image, "pull_ref": image, "storage": "local"}
    before = templates(host)
    fault.arm(host)
    try:
        attempt = _unreachable(props) if fault.kind == "unreachable" else props
        _expect_failure(lambda: OciTemplateProvider().create(dict(attempt)), words)
    finally:
        fault.disarm(host)
    assert templates(host) == before, f"the failed pull left {set(templates(host)) - set(before)}"
    outs = OciTemplateProvider().create(dict(props)).outs
    assert outs["path"].rsplit("/", 1)[-1] in templates(host) and not template_leftovers(host)
    OciTemplateProvider().delete("", outs)
    _counted(point)


# ---------------------------------------------------------------- create

CREATE_POINTS = {
    "vmid allocation fails": (Fault("ssh", r"^LC_ALL=C pvesh get /cluster/nextid", message="pvesh: cluster not ready"),
                              ("pvesh get /cluster/nextid",)),
    "connection dropped": (Fault("ssh", r"section:created", action="drop"), ("connection was lost",)),
    "timeout": (Fault("timeout", r"section:created"), ("timed out",)),
    "pct create fails": (Fault("tool", "pct create *", message="unable to create CT - storage full"), ("creating CT",)),
    "env write fails": (Fault("tool", "perl *", message="can't lock file"), ("creating CT",)),
    "pct start fails": (Fault("tool", "pct start *", message="startup for container failed"), ("creating CT",)),
    "host unreachable": (Fault("unreachable"), ("cannot connect",)),
}


@pytest.mark.parametrize("point", list(CREATE_POINTS))
def test_a_create_fails_cleanly_and_the_next_run_creates(host, images, point, monkeypatch):
    fault, words = CREATE_POINTS[point]
    app = "c-" + re.sub(r"[^a-z]", "", point)[:12]
    props = _props(host, app, images[NGINX]["volid"])
    monkeypatch.setattr(ct_create, "CREATE_TIMEOUT", 3)
    vmids_before = set(configs(host))
    fault.arm(host)
    try:
        attempt = _unreachable(props) if fault.kind == "unreachable" else props
        _expect_failure(lambda: ProxmoxCTProvider().create(copy.deepcopy(attempt)), words)
    finally:
        fault.disarm(host)
        close_all()  # a hung channel's connection is dropped, as a killed provider's would be
    found = _invariants(host, app)
    others = set(configs(host)) - vmids_before - set(found["cts"])
    assert not others, f"the failed create left CTs {others}"
    monkeypatch.setattr(ct_create, "CREATE_TIMEOUT", 1800)
    outs = ProxmoxCTProvider().create(copy.deepcopy(props)).outs
    found = _invariants(host, app)
    assert found["cts"] == [outs["vmid"]] and status(host, outs["vmid"]) == "running"
    assert set(configs(host)) - vmids_before == {outs["vmid"]}
    ProxmoxCTProvider().delete("", {**outs, "delete_data": True})
    _counted(point)


# ---------------------------------------------------------------- update and upgrade

@dataclass
class Running:
    props: dict
    outs: dict
    token: str
    vmid: int = field(init=False)

    def __post_init__(self):
        self.vmid = self.outs["vmid"]


@pytest.fixture
def running(host, images, request):
    app = "u-" + secrets.token_hex(3)
    props = _props(host, app, images[NGINX]["volid"])
    outs = ProxmoxCTProvider().create(copy.deepcopy(props)).outs
    token = f"data-{secrets.token_hex(4)}"
    put_data(host, outs["vmid"], token)
    yield Running(props, outs, token)
    clear_faults(host)
    clear_tool_faults(host)
    for vmid in marked(host, STACK, app)["cts"] + marked(host, STACK, app)["holders"]:
        ProxmoxCTProvider()._destroy(props, vmid, status(host, vmid) == "running")


def _read_script(vmid: int) -> str:
    return "^" + re.escape(remote_command_line(ctops.read_script(vmid))) + "$"


UPDATE_POINTS = {
    "reading the CT: connection dropped": (lambda v: Fault("ssh", _read_script(v), action="drop"), ("connection was lost",)),
    "pct set fails": (lambda v: Fault("tool", f"pct set {v} *", message="unable to set"), ("updating CT",)),
    "env write fails after the shutdown": (lambda v: Fault("tool", "perl *", message="can't lock file"), ("updating CT",)),
    "start after the env write fails": (lambda v: Fault("tool", f"pct start {v}", message="startup failed"), ("updating CT",)),
    "host unreachable": (lambda v: Fault("unreachable"), ("cannot connect",)),
}


@pytest.mark.parametrize("point", list(UPDATE_POINTS))
def test_an_update_fails_cleanly_and_the_next_run_applies_it(host, running, point):
    make, words = UPDATE_POINTS[point]
    fault = make(running.vmid)
    news = {**running.props, "memory": 256, "env": {"GREETING": "bonjour"}}
    fault.arm(host)
    try:
        olds = _unreachable(running.outs) if fault.kind == "unreachable" else running.outs
        _expect_failure(lambda: ProxmoxCTProvider().update("", copy.deepcopy(olds), copy.deepcopy(news)), words)
    finally:
        fault.disarm(host)
    _invariants(host, running.props["app"], running.token)
    ProxmoxCTProvider().update("", copy.deepcopy(running.outs), copy.deepcopy(news))
    conf = configs(host)[running.vmid]
    env = [value for key, value in conf["lxc"] if key == "lxc.environment.runtime"]
    assert conf["memory"] == "256" and "GREETING=bonjour" in env, conf
    assert status(host, running.vmid) == "running"
    _invariants(host, running.props["app"], running.token)
    _counted(point)


UPGRADE_POINTS = {
    "holder create fails": (lambda v: Fault("tool", "pct create *", message="unable to create CT"), ("moving the data",)),
    "moving a volume to the holder fails": (lambda v: Fault("tool", f"pct move-volume {v} *", message="move failed"),
                                            ("moving the data",)),
    # the recreate path destroys without --purge (issue 13 item 3): `pct destroy VMID` and nothing more
    "destroying the old CT fails": (lambda v: Fault("tool", f"pct destroy {v}", message="destroy failed"),
                                    ("moving the data",)),
    "connection dropped before the new CT": (lambda v: Fault("ssh", r"section:created", action="drop"),
                                             ("connection was lost",)),
    "moving a volume back fails": (lambda v: Fault("tool", f"pct move-volume * --target-vmid {v} *", message="move failed"),
                                   ("creating CT",)),
    "the new CT does not start": (lambda v: Fault("tool", f"pct start {v}", message="startup failed"), ("creating CT",)),
}


@pytest.mark.parametrize("point", list(UPGRADE_POINTS))
def test_an_upgrade_fails_without_losing_data_and_the_next_run_finishes_it(host, images, running, point):
    make, words = UPGRADE_POINTS[point]
    fault = make(running.vmid)
    news = {**running.props, "template": images[ALPINE]["volid"]}
    fault.arm(host)
    try:
        _expect_failure(lambda: ProxmoxCTProvider().update("", copy.deepcopy(running.outs), copy.deepcopy(news)), words)
    finally:
        fault.disarm(host)
    _invariants(host, running.props["app"], running.token)
    outs = ProxmoxCTProvider().update("", copy.deepcopy(running.outs), copy.deepcopy(news)).outs
    found = _invariants(host, running.props["app"], running.token)
    assert found == {"cts": [running.vmid], "holders": []}, found
    conf = configs(host)[running.vmid]
    assert images[ALPINE]["volid"] in conf["description"] and status(host, running.vmid) == "running"
    assert data_owner(host, running.token) == [conf["mp0"].split(",")[0].split(":")[1]]
    assert outs["vmid"] == running.vmid
    _counted(point)


# ---------------------------------------------------------------- delete

DELETE_POINTS = {
    "reading the CT: connection dropped": (lambda v: Fault("ssh", _read_script(v), action="drop"), ("connection was lost",)),
    "holder create fails": (lambda v: Fault("tool", "pct create *", message="unable to create CT"), ("moving the data",)),
    "destroy after parking fails": (lambda v: Fault("tool", f"pct destroy {v} *", message="destroy failed"),
                                    ("moving the data",)),
    "host unreachable": (lambda v: Fault("unreachable"), ("cannot connect",)),
}


@pytest.mark.parametrize("point", list(DELETE_POINTS))
def test_a_delete_fails_cleanly_and_the_next_run_deletes_keeping_the_data(host, running, point):
    make, words = DELETE_POINTS[point]
    fault = make(running.vmid)
    fault.arm(host)
    try:
        props = _unreachable(running.outs) if fault.kind == "unreachable" else running.outs
        _expect_failure(lambda: ProxmoxCTProvider().delete("", copy.deepcopy(props)), words)
    finally:
        fault.disarm(host)
    _invariants(host, running.props["app"], running.token)
    ProxmoxCTProvider().delete("", copy.deepcopy(running.outs))
    found = _invariants(host, running.props["app"], running.token)
    assert found["cts"] == [] and len(found["holders"]) == 1, "deleted without deleteData: the data stays on a holder"
    _counted(point)


# ---------------------------------------------------------------- TrueNAS apps

NAS_COMPOSE = "services:\n  web:\n    image: docker.io/library/nginx:1.27\n    ports: ['8090:80']\n"


def _nas_props(nas, app: str, compose: str = NAS_COMPOSE) -> dict:
    return {"host": target(nas), "stack": STACK, "app": app, "compose": compose, "generation": "24.10",
            "delete_data": True}


def _nas_apps(nas) -> dict:
    """{name: (state, owner)} of every app on the NAS."""
    rc, out, err = ssh_run(nas, ["midclt", "call", "app.query"])
    assert rc == 0, err
    found = {}
    for entry in json.loads(out):
        rc, conf, _ = ssh_run(nas, ["midclt", "call", "app.config", entry["name"]])
        owner = (json.loads(conf) or {}).get("x-homefleet") if rc == 0 else None
        found[entry["name"]] = (entry["state"], owner)
    return found


NAS_POINTS = {
    "create: connection dropped at app.create": ("create", Fault("ssh", r"python3 -c .* app\.create$", action="drop"),
                                                 ("connection was lost",)),
    "create: connection dropped while the job runs": ("create", Fault("ssh", r"midclt call core\.get_jobs",
                                                                      action="drop"), ("connection was lost",)),
    "create: the middleware refuses": ("create", Fault("ssh", r"python3 -c .* app\.create$",
                                                      message="[EINVAL] app_create.values: injected"), ("app.create",)),
    "create: host unreachable": ("create", Fault("unreachable"), ("cannot connect",)),
    "update: connection dropped at app.update": ("update", Fault("ssh", r"python3 -c .* app\.update$", action="drop"),
                                                 ("connection was lost",)),
    "delete: connection dropped at app.delete": ("delete", Fault("ssh", r"midclt call app\.delete", action="drop"),
                                                 ("connection was lost",)),
}


@pytest.mark.parametrize("point", list(NAS_POINTS))
def test_a_truenas_step_fails_cleanly_and_the_next_run_converges(security_fleet, point):
    nas = security_fleet["nas1"]
    op, fault, words = NAS_POINTS[point]
    app = "n" + re.sub(r"[^a-z]", "", point)[:20]
    props = _nas_props(nas, app)
    provider = TrueNASAppProvider()
    outs = provider.create(dict(props)).outs if op != "create" else None
    news = _nas_props(nas, app, NAS_COMPOSE.replace("1.27", "1.28")) if op == "update" else props
    call = {"create": lambda p: provider.create(dict(p)),
            "update": lambda p: provider.update("", {**outs, "host": p["host"]}, dict(news)),
            "delete": lambda p: provider.delete("", {**outs, "host": p["host"]})}[op]
    fault.arm(nas)
    try:
        message = _expect_failure_on(nas, lambda: call(_unreachable(props) if fault.kind == "unreachable" else props),
                                     words)
    finally:
        fault.disarm(nas)
        close_all()
    assert "nas1" in message
    apps = _nas_apps(nas)
    if app in apps:  # as before or as after: if it exists, it is ours
        assert apps[app][1] == {"stack": STACK, "app": app}, apps[app]
    call(props)  # the next run
    apps = _nas_apps(nas)
    if op == "delete":
        assert app not in apps
    else:
        assert apps[app][0] == "RUNNING" and apps[app][1] == {"stack": STACK, "app": app}
        provider.delete("", {**props, "state": "RUNNING"})
    assert app not in _nas_apps(nas)
    _counted(point)
