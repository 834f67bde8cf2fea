"""The pull-request summary from real `pulumi preview --json` output of simulated-host stacks:
create, no change, update + image upgrade + delete (in that order of danger), replace, secrets.
After the mixed change, `up` shows the summary told the truth."""

import pytest

from homefleet.preview_summary import summarize

from .conftest import hosts_config
from .helpers import ct_by_name, ct_config, ct_list

pytestmark = pytest.mark.engine
STACK = "prsum"
SECRET_VALUE = "s3cr3t-Preview-Value-91"


def base_apps() -> dict:
    return {
        "web": {"host": "pve1", "image": "docker.io/library/nginx:1.27", "memory": 256, "vmid": 500},
        "app": {"host": "pve1", "image": "ghcr.io/homefleet/test-app:1.0", "vmid": 501,
                "volumes": [{"path": "/data", "size": 1}]},
        "old": {"host": "pve1", "image": "docker.io/library/alpine:3.20", "vmid": 502,
                "volumes": [{"path": "/var/lib/old", "size": 1}]},
        "other": {"host": "pve2", "image": "docker.io/library/nginx:1.27", "vmid": 510},
    }


def mixed_change() -> dict:
    apps = base_apps()
    apps["web"]["memory"] = 512
    apps["app"]["image"] = "ghcr.io/homefleet/test-app:2.0"
    del apps["old"]
    return apps


def preview(project, fleet, apps) -> tuple:
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": apps})
    # the flags .github/workflows/preview.yml uses
    run = project.pulumi("preview", "--json", "--refresh", "--show-sames", stack=STACK, check=True)
    return run.stdout, summarize(run.json())


def bullets(summary: str) -> list:
    return [line for line in summary.splitlines() if line.startswith("- ")]


@pytest.fixture(scope="module")
def created(fleet, project):
    _, summary = preview(project, fleet, base_apps())
    project.pulumi("up", "--yes", stack=STACK, check=True)
    return summary


def test_create(created):
    assert "4 apps change: 4 create." in created
    assert "Data-affecting" not in created
    pve1, pve2 = created.index("**pve1**"), created.index("**pve2**")
    assert pve1 < pve2
    assert bullets(created) == [
        "- **app** — **create**: from `ghcr.io/homefleet/test-app:1.0`, data volumes `/data`",
        "- **old** — **create**: from `docker.io/library/alpine:3.20`, data volumes `/var/lib/old`",
        "- **web** — **create**: from `docker.io/library/nginx:1.27`",
        "- images: pull `docker.io/library/alpine:3.20`, `docker.io/library/nginx:1.27`, `ghcr.io/homefleet/test-app:1.0`",
        "- **other** — **create**: from `docker.io/library/nginx:1.27`",
        "- images: pull `docker.io/library/nginx:1.27`",
    ]


def test_no_change(fleet, project, created):
    _, summary = preview(project, fleet, base_apps())
    assert summary == "### homefleet preview: stack `prsum`\n\nNo changes: the hosts already match the stack.\n"


def test_update_image_upgrade_and_delete_in_order_of_danger(fleet, project, created):
    _, summary = preview(project, fleet, mixed_change())
    assert "3 apps change: 1 delete, 1 image upgrade, 1 update." in summary
    assert bullets(summary) == [
        "- 🔴 **pve1 / old** — **delete**: CT 502 deleted; data volumes kept on a holder CT (`/var/lib/old`)",
        "- 🟠 **pve1 / app** — **image upgrade** `ghcr.io/homefleet/test-app:1.0` -> `ghcr.io/homefleet/test-app:2.0`: "
        "backup to `local`, then recreate CT 501, health gate 300 s; data volumes carried over (`/data`)",
        "- **web** — **update**: memory: 256 -> 512 MiB",
        "- images: pull `ghcr.io/homefleet/test-app:2.0`; remove `docker.io/library/alpine:3.20`, "
        "`ghcr.io/homefleet/test-app:1.0`",
    ]
    assert summary.index("Data-affecting") < summary.index("**pve1**")
    assert "**other**" not in summary and "pve2" not in summary

    # The summary told the truth: up does exactly that.
    pve1 = fleet["pve1"]
    project.pulumi("up", "--yes", stack=STACK, check=True)
    names = {row["name"]: row for row in ct_list(pve1)}
    assert "old" not in names and ct_by_name(pve1, "app")["vmid"] == 501
    holders = [row for row in ct_list(pve1) if row["vmid"] not in (500, 501)]
    assert len(holders) == 1, names
    holder = ct_config(pve1, holders[0]["vmid"])
    assert any(k.startswith("mp") and v.startswith("local-zfs:") for k, v in holder.items()), holder
    app = ct_config(pve1, 501)
    assert "mp=/data" in app["mp0"] and "test-app_2.0_" in app["description"], app
    assert ct_config(pve1, 500)["memory"] == "512"


def test_replace_and_a_secret_that_stays_secret(fleet, project, created):
    apps = mixed_change()
    apps["web"]["vmid"] = 520
    project.write_stack(STACK, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": apps})
    project.set_secret(STACK, "homefleet:secrets.app.API_TOKEN", SECRET_VALUE, path=True)
    run = project.pulumi("preview", "--json", stack=STACK, check=True)
    summary = summarize(run.json())
    assert SECRET_VALUE not in run.stdout and SECRET_VALUE not in summary
    assert bullets(summary) == [
        "- 🟠 **pve1 / web** — **replace** (vmid: 500 -> 520): CT 500 deleted and a new CT created; "
        "no data volumes, its root disk starts fresh",
        "- **app** — **update**: secrets: [secret] changed (restarts the CT)",
    ]
