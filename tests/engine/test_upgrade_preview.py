"""What a preview says about a safe upgrade (issue 15 item 4), from real `pulumi preview` runs
against simulated hosts, and the upgrade keys' rule: they change nothing on the host, so a
state written before they existed previews no change, and a change of only them is an update
that runs nothing on the host."""

import json

import pytest

from homefleet.preview_summary import summarize

from .conftest import hosts_config
from .helpers import ct_config, tools_since, tool_count

pytestmark = pytest.mark.engine
STACK = "upprev"
KEYS = ("backup_storage", "keep_backups", "rollback")
# Everything issue 15 added to a ProxmoxCT's inputs and outputs: none of it is in an older state.
ISSUE_15 = KEYS + ("health_timeout", "health", "healthy", "last_backup")
READS = {"config", "status", "list", "pending"}


def base_apps() -> dict:
    return {
        "app": {"host": "pve1", "image": "ghcr.io/homefleet/test-app:1.0", "vmid": 601,
                "volumes": [{"path": "/data", "size": 1}], "mounts": ["/tank/media:/media:ro"]},
        "web": {"host": "pve1", "image": "ghcr.io/homefleet/test-app:1.0", "vmid": 602, "memory": 256},
    }


def write(project, fleet, apps) -> None:
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": apps})


def summary_of(project) -> str:
    # the flags .github/workflows/preview.yml uses
    run = project.pulumi("preview", "--json", "--refresh", "--show-sames", stack=STACK, check=True)
    return summarize(run.json())


def bullets(summary: str) -> list:
    return [line for line in summary.splitlines() if line.startswith("- ")]


def host_changes(host, start: int) -> list:
    """The PVE tool calls since `start` that are not reads (pct config/status/list, pvesm list...)."""
    return [argv for argv in tools_since(host, start)
            if not (len(argv) > 1 and (argv[1] in READS or argv[0] in ("lxc-info", "pvesh")))]


@pytest.fixture(scope="module")
def deployed(fleet, project):
    write(project, fleet, base_apps())
    project.pulumi("up", "--yes", stack=STACK, check=True)


def test_a_state_from_before_the_upgrade_keys_previews_no_changes(fleet, project, deployed, tmp_path):
    """As after upgrading homefleet: the state holds no backup_storage/keep_backups/rollback."""
    state = json.loads(project.pulumi("stack", "export", stack=STACK, check=True).stdout)
    stripped = set()
    for res in state["deployment"]["resources"]:
        if res["type"].endswith(":ProxmoxCT"):
            for part in ("inputs", "outputs"):
                for key in ISSUE_15:
                    if key in res.get(part, {}):
                        stripped.add(key)
                        del res[part][key]
    assert set(KEYS) <= stripped, "the state held the keys to strip"
    exported = tmp_path / "state.json"
    exported.write_text(json.dumps(state))
    project.pulumi("stack", "import", "--file", str(exported), stack=STACK, check=True)

    assert summary_of(project) == "### homefleet preview: stack `upprev`\n\nNo changes: the hosts already match the stack.\n"
    assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok


def test_a_change_of_only_the_keys_is_an_update_that_runs_nothing_on_the_host(fleet, project, deployed):
    pve1 = fleet["pve1"]
    apps = base_apps()
    apps["app"]["rollback"] = False
    apps["web"]["keepBackups"] = 5
    write(project, fleet, apps)
    assert bullets(summary_of(project)) == [
        "- **app** — **update**: rollback: true -> false (nothing changes on the host)",
        "- **web** — **update**: keepBackups: 3 -> 5 (nothing changes on the host)",
    ]
    before = {vmid: ct_config(pve1, vmid) for vmid in (601, 602)}
    start = tool_count(pve1)
    project.pulumi("up", "--yes", stack=STACK, check=True)
    assert host_changes(pve1, start) == []
    assert {vmid: ct_config(pve1, vmid) for vmid in (601, 602)} == before
    assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok
    state = json.loads(project.pulumi("stack", "export", stack=STACK, check=True).stdout)
    outputs = {r["outputs"]["app"]: r["outputs"] for r in state["deployment"]["resources"]
               if r["type"].endswith(":ProxmoxCT")}
    assert outputs["app"]["rollback"] is False and outputs["web"]["keep_backups"] == 5, "the state records them"


def test_an_image_upgrade_says_backup_recreate_health_gate_and_names_the_bind_mounts(fleet, project, deployed):
    apps = base_apps()
    apps["app"]["image"] = apps["web"]["image"] = "ghcr.io/homefleet/test-app:2.0"
    apps["web"]["rollback"] = False
    write(project, fleet, apps)
    summary = summary_of(project)
    assert bullets(summary) == [
        "- 🟠 **pve1 / app** — **image upgrade** `ghcr.io/homefleet/test-app:1.0` -> `ghcr.io/homefleet/test-app:2.0`: "
        "backup to `local`, then recreate CT 601, health gate 300 s; data volumes carried over (`/data`); "
        "bind mounts are not in the backup: `/tank/media` (at `/media`); also rollback: false -> true",
        "- 🟠 **pve1 / web** — **image upgrade** `ghcr.io/homefleet/test-app:1.0` -> `ghcr.io/homefleet/test-app:2.0`: "
        "backup to `local`, then recreate CT 602, health gate 300 s, rollback off; no data volumes, "
        "its root disk starts fresh (the backup holds the old one); also keepBackups: 5 -> 3; rollback: true -> false",
        "- images: pull `ghcr.io/homefleet/test-app:2.0`; remove `ghcr.io/homefleet/test-app:1.0`",
    ]
    # `pulumi preview` itself says it, from the provider's diff
    run = project.pulumi("preview", stack=STACK, check=True)
    out = run.stdout + run.stderr
    assert "image upgrade of CT 601: backup to local, then recreate CT 601, health gate 300 s" in out, out
    assert "image upgrade of CT 602: backup to local, then recreate CT 602, health gate 300 s, rollback off" in out, out
    assert "warning: bind mounts are not in the backup of CT 601: /tank/media (at /media)" in out, out
    assert "CT 602" not in out.split("bind mounts are not in the backup", 1)[1].split("\n", 1)[0]


def test_delete_data_says_the_backup_before_the_destroy(fleet, project, deployed):
    apps = base_apps()
    apps["app"]["deleteData"] = True
    write(project, fleet, apps)
    assert bullets(summary_of(project)) == [
        "- **app** — **update**: deleteData: false -> true (a later delete backs the CT up to `local` first, "
        "then destroys its data volumes); rollback: false -> true",
        "- **web** — **update**: keepBackups: 5 -> 3 (nothing changes on the host)",
    ]
    project.pulumi("up", "--yes", stack=STACK, check=True)
    del apps["app"]
    write(project, fleet, apps)
    assert bullets(summary_of(project))[0] == (
        "- 🔴 **pve1 / app** — **delete**: CT 601 backed up to `local`, then deleted with its data "
        "(deleteData: true; volumes `/data`)")


def test_a_volume_that_changes_slot_is_said_and_done_as_a_backed_up_recreate(fleet, project, deployed):
    pve1 = fleet["pve1"]
    apps = base_apps()
    apps["app"]["deleteData"] = True  # as the test before left the state
    apps["vols"] = {"host": "pve1", "image": "ghcr.io/homefleet/test-app:1.0", "vmid": 603,
                    "volumes": [{"path": "/a", "size": 1}, {"path": "/b", "size": 1}]}
    write(project, fleet, apps)
    project.pulumi("up", "--yes", stack=STACK, check=True)
    apps["vols"]["volumes"] = [{"path": "/b", "size": 1}]
    write(project, fleet, apps)
    assert bullets(summary_of(project)) == [
        "- 🟠 **pve1 / vols** — **recreate**: a data volume changes slot (`/a` -> `/b`): backup to `local`, then "
        "recreate CT 603, health gate 300 s; data volumes carried over (`/b`); `/a` stays on a holder CT "
        "(the app no longer names it)"]
    start = tool_count(pve1)
    project.pulumi("up", "--yes", stack=STACK, check=True)
    ran = tools_since(pve1, start)
    assert any(argv[:2] == ["vzdump", "603"] for argv in ran), ran
    assert any(argv[:3] == ["pct", "create", "603"] for argv in ran), ran
    assert "mp=/b" in ct_config(pve1, 603)["mp0"]
