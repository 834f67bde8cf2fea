"""The preview says the truth, through the real engine on simulated hosts:

1. an update names exactly the changed properties (`diffReasons`, the detailed diff, `--diff`),
   and drift found by `--refresh` still shows as an update;
2. a change of provider code alone shows no diff;
3. an image tag that moved to a new digest shows with `--refresh` (and only with it).
"""

import subprocess
import sys

import pytest

from homefleet.preview_summary import summarize
from sim.testing import ssh_run

from .conftest import hosts_config
from .helpers import ct_by_name

pytestmark = pytest.mark.engine
STACK = "truth"
MOVING = "ghcr.io/homefleet/test-app:1.0"


def apps(memory=256):
    return {
        "web": {"host": "pve1", "image": "docker.io/library/nginx:1.27", "memory": memory, "vmid": 400},
        "app": {"host": "pve1", "image": MOVING, "vmid": 401, "volumes": [{"path": "/data", "size": 1}]},
    }


def write(project, fleet, app_config):
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": app_config})


def step(preview: dict, name: str) -> dict:
    found = [s for s in preview["steps"] if s["urn"].endswith(f"::{name}") and s["op"] != "refresh"]
    assert len(found) == 1, [(s["op"], s["urn"]) for s in preview["steps"]]
    return found[0]


def changed(preview: dict) -> list:
    return sorted((s["op"], s["urn"].rsplit("::", 1)[-1]) for s in preview["steps"]
                  if s["op"] not in ("same", "refresh"))


@pytest.fixture(scope="module")
def deployed(fleet, project):
    write(project, fleet, apps())
    project.pulumi("up", "--yes", stack=STACK, check=True)
    yield
    write(project, fleet, apps())


def test_an_update_names_exactly_the_changed_property(fleet, project, deployed):
    write(project, fleet, apps(memory=512))
    preview = project.pulumi("preview", "--json", stack=STACK, check=True).json()
    assert changed(preview) == [("update", "web")]
    web = step(preview, "web")
    assert web["diffReasons"] == ["memory"]
    assert set(web["detailedDiff"]) == {"memory"} and web["detailedDiff"]["memory"]["kind"] == "update"
    text = project.pulumi("preview", "--diff", stack=STACK, check=True).stdout
    assert "~ memory: 256 => 512" in text, text
    assert "hostname" not in text, "only the changed property is listed, not the whole resource"
    write(project, fleet, apps())


def test_drift_alone_still_shows_with_refresh(fleet, project, deployed):
    rc, _, err = ssh_run(fleet["pve1"], ["pct", "set", "400", "--memory", "1024"])
    assert rc == 0, err
    try:
        assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok, "without --refresh the state is the truth"
        preview = project.pulumi("preview", "--json", "--refresh", stack=STACK, check=True).json()
        assert changed(preview) == [("update", "web")]
        summary = summarize(preview)
        assert "**web** — **update**: the host drifted from the stack; up puts it back (memory: 1024 on the host -> 256 MiB)" in summary, summary
    finally:
        rc, _, err = ssh_run(fleet["pve1"], ["pct", "set", "400", "--memory", "256"])
        assert rc == 0, err


def test_a_change_of_provider_code_alone_shows_no_diff(project, deployed):
    module = project.workdir / "providers" / "proxmox_ct.py"
    original = module.read_text()
    edited = original.replace('"""ProxmoxCT: ', '"""ProxmoxCT (edited docstring): ', 1)
    edited += "\n\n# a new comment\ndef _unused_helper():\n    return 42\n"
    assert edited != original
    module.write_text(edited)
    try:
        run = project.pulumi("preview", "--expect-no-changes", stack=STACK)
        assert run.ok, run
        preview = project.pulumi("preview", "--json", stack=STACK, check=True).json()
        assert changed(preview) == []
        assert "No changes" in summarize(preview)
    finally:
        module.write_text(original)


def test_a_moved_tag_shows_with_refresh_as_a_new_digest(fleet, project, deployed):
    retag = subprocess.run([sys.executable, "-m", "sim", "retag", "--dir", str(fleet.dir), MOVING],
                           capture_output=True, text=True, check=True)
    new_digest = retag.stdout.split()[-1]
    assert new_digest.startswith("sha256:")
    # Without --refresh the engine only has the state, which cannot know about the registry.
    assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok
    preview = project.pulumi("preview", "--json", "--refresh", stack=STACK, check=True).json()
    template = step(preview, "pve1-ghcr.io-homefleet-test-app-1.0")
    assert template["op"] == "replace" and template["replaceReasons"] == ["digest"]
    old_digest = template["oldState"]["outputs"]["digest"]
    assert template["oldState"]["outputs"]["latest_digest"] == new_digest != old_digest
    app = step(preview, "app")
    assert app["op"] == "update" and app["diffReasons"] == ["template"]
    assert changed(preview) == [("replace", "pve1-ghcr.io-homefleet-test-app-1.0"), ("update", "app")]
    summary = summarize(preview)
    assert (f"**pve1 / app** — **image upgrade**: new digest of `{MOVING}` ({old_digest[:19]} -> {new_digest[:19]}): "
            "CT 401 recreated, data volumes carried over (`/data`)") in summary, summary
    assert f"- images: pull the new digest of `{MOVING}`" in summary
    # ...and `up --refresh` does it: same CT id, the new archive, the data volume kept.
    project.pulumi("up", "--yes", "--refresh", stack=STACK, check=True)
    ct = ct_by_name(fleet["pve1"], "app")
    assert ct["vmid"] == 401 and ct["status"] == "running"
    rc, out, _ = ssh_run(fleet["pve1"], ["pct", "config", "401"])
    assert rc == 0 and f"_{new_digest[7:19]}.tar" in out and "mp=/data" in out, out
