"""homefleet.preview_summary on hand-made `pulumi preview --json` documents (the shapes the
engine prints; tests/engine/test_preview_summary.py uses real ones)."""

import json
import subprocess
import sys

from homefleet.preview_summary import UNKNOWN, field_changes, fmt, summarize

CT = "pulumi-python:dynamic/homefleet:ProxmoxCT"
TPL = "pulumi-python:dynamic/homefleet:OciTemplate"
NAS = "pulumi-python:dynamic/homefleet:TrueNASApp"


def urn(rtype: str, name: str) -> str:
    return f"urn:pulumi:dev::homefleet::{rtype}::{name}"


def host(name: str = "pve1") -> dict:
    return {"name": name, "address": "127.0.0.1", "port": 2222, "user": "root"}


def ct_inputs(app: str, **changes) -> dict:
    inputs = {"__provider": "[secret]", "stack": "dev", "app": app, "host": host(), "hostname": app,
              "memory": 512, "cores": 1, "swap": 512, "rootfs_storage": "local-zfs", "rootfs_size": 4,
              "template": f"local:vztmpl/docker.io_library_{app}_1.0_0123456789ab.tar", "template_kind": "oci",
              "volumes": [], "env": {}, "secret_env": "[secret]", "delete_data": False, "unprivileged": True}
    inputs.update(changes)
    return inputs


def state(rtype: str, name: str, inputs: dict, outputs: dict = None, deps: dict = None, id_: str = None) -> dict:
    return {"urn": urn(rtype, name), "type": rtype, "inputs": inputs,
            "outputs": outputs if outputs is not None else dict(inputs),
            "propertyDependencies": deps or {}, **({"id": id_} if id_ else {})}


def step(op: str, rtype: str, name: str, old: dict = None, new: dict = None, **extra) -> dict:
    out = {"op": op, "urn": urn(rtype, name), **extra}
    if old is not None:
        out["oldState"] = state(rtype, name, **old)
    if new is not None:
        out["newState"] = state(rtype, name, **new)
    return out


def ct_old(app: str, ct_id: int, **changes) -> dict:
    inputs = ct_inputs(app, **changes)
    return {"inputs": inputs, "outputs": {**inputs, "vmid": ct_id, "observed": {"memory": str(inputs["memory"])}},
            "id_": f"pve1/{ct_id}"}


def doc(*steps, **extra) -> dict:
    return {"steps": [{"op": "same", "urn": "urn:pulumi:dev::homefleet::pulumi:pulumi:Stack::homefleet-dev"}, *steps],
            "changeSummary": {}, **extra}


def bullets(summary: str) -> list:
    return [line for line in summary.splitlines() if line.startswith("- ")]


def tpl_state(image: str, digest: str = "sha256:" + "a" * 64, latest: str = None) -> dict:
    inputs = {"__provider": "[secret]", "host": host(), "image": image, "pull_ref": image, "storage": "local"}
    return {"inputs": inputs, "outputs": {**inputs, "digest": digest, "latest_digest": latest or digest,
                                          "volid": "local:vztmpl/x.tar"}}


def tpl_name(image: str) -> str:
    return "pve1-" + image.replace("/", "-").replace(":", "-")


# ---------------------------------------------------------------- the acceptance case, by hand

def test_memory_update_image_upgrade_and_delete_in_order_of_danger():
    old_tpl, new_tpl = tpl_name("ghcr.io/homefleet/app:1.0"), tpl_name("ghcr.io/homefleet/app:2.0")
    app_old = ct_old("app", 201, volumes=[{"path": "/data", "size": 1, "storage": "local-zfs"}])
    app_old["deps"] = {"template": [urn(TPL, old_tpl)]}
    app_new = {"inputs": ct_inputs("app", template=UNKNOWN, volumes=[{"path": "/data", "size": 1, "storage": "local-zfs"}]),
               "deps": {"template": [urn(TPL, new_tpl)]}}
    preview = doc(
        step("update", CT, "web", old=ct_old("web", 200, memory=256), new={"inputs": ct_inputs("web", memory=512)},
             diffReasons=["memory"]),
        step("create", TPL, new_tpl, new={"inputs": tpl_state("ghcr.io/homefleet/app:2.0")["inputs"]}),
        step("update", CT, "app", old=app_old, new=app_new),
        step("delete", CT, "old", old=ct_old("old", 202, volumes=[{"path": "/srv", "size": 1}])),
        step("delete", TPL, old_tpl, old=tpl_state("ghcr.io/homefleet/app:1.0")),
    )
    summary = summarize(preview)
    assert "3 apps change: 1 delete, 1 image upgrade, 1 update." in summary
    assert bullets(summary) == [
        "- 🔴 **pve1 / old** — **delete**: CT 202 deleted; data volumes kept on a holder CT (`/srv`)",
        "- 🟠 **pve1 / app** — **image upgrade** `ghcr.io/homefleet/app:1.0` -> `ghcr.io/homefleet/app:2.0`: "
        "backup to `local`, then recreate CT 201, health gate 300 s; data volumes carried over (`/data`)",
        "- **web** — **update**: memory: 256 -> 512 MiB",
        "- images: pull `ghcr.io/homefleet/app:2.0`; remove `ghcr.io/homefleet/app:1.0`",
    ]


# ---------------------------------------------------------------- danger and wording

def test_deletes_say_what_happens_to_the_data_and_the_worst_comes_first():
    vols = [{"path": "/data", "size": 1}]
    summary = summarize(doc(
        step("delete", CT, "kept", old=ct_old("kept", 300, volumes=vols)),
        step("delete", CT, "gone", old=ct_old("gone", 301, volumes=vols, delete_data=True)),
        step("delete", CT, "plain", old=ct_old("plain", 302)),
    ))
    assert bullets(summary) == [
        "- 🔴 **pve1 / gone** — **delete**: CT 301 backed up to `local`, then deleted with its data "
        "(deleteData: true; volumes `/data`)",
        "- 🔴 **pve1 / plain** — **delete**: CT 302 deleted with its root disk (it has no data volumes)",
        "- 🔴 **pve1 / kept** — **delete**: CT 300 deleted; data volumes kept on a holder CT (`/data`)",
    ]


def test_replace_by_vmid_and_a_move_to_another_host():
    vols = [{"path": "/data", "size": 1}]
    moved_new = ct_inputs("db", host=host("pve2"), volumes=vols)
    summary = summarize(doc(
        step("replace", CT, "web", old=ct_old("web", 200, vmid=200), new={"inputs": ct_inputs("web", vmid=210)},
             replaceReasons=["vmid"]),
        step("replace", CT, "db", old=ct_old("db", 205, volumes=vols), new={"inputs": moved_new},
             replaceReasons=["host"]),
    ))
    lines = bullets(summary)
    assert lines[0].startswith("- 🔴 **pve1 -> pve2 / db** — **move** (host.name: `pve1` -> `pve2`): CT 205 deleted on pve1 "
                               "and created on pve2; data volumes (`/data`) stay on pve1 on a holder CT; "
                               "pve2 starts with empty volumes"), lines
    assert lines[1] == ("- 🟠 **pve1 / web** — **replace** (vmid: 200 -> 210): CT 200 deleted and a new CT created; "
                        "no data volumes, its root disk starts fresh")


def test_rootfs_change_recreates_and_other_fields_are_listed_too():
    summary = summarize(doc(step(
        "update", CT, "web", old=ct_old("web", 200, volumes=[{"path": "/d", "size": 1}]),
        new={"inputs": ct_inputs("web", rootfs_storage="tank", cores=2, volumes=[{"path": "/d", "size": 1}])})))
    assert bullets(summary) == [
        "- 🟠 **pve1 / web** — **recreate**: storage: `local-zfs` -> `tank`: backup to `local`, then recreate CT 200, "
        "health gate 300 s; data volumes carried over (`/d`); also cores: 1 -> 2"]


def test_a_larger_disk_is_an_update_in_place():
    """providers/ct_update.py resizes_of: `pct resize`, no recreate, no backup."""
    summary = summarize(doc(step("update", CT, "web", old=ct_old("web", 200), new={"inputs": ct_inputs("web", rootfs_size=8)})))
    assert bullets(summary) == ["- **web** — **update**: disk: 4 -> 8 GiB"]


def test_a_moved_tag_is_a_new_digest_of_the_same_image():
    name = tpl_name("nginx:1.27")
    old_digest, new_digest = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    old = ct_old("web", 200)
    old["deps"] = {"template": [urn(TPL, name)]}
    summary = summarize(doc(
        step("replace", TPL, name, old=tpl_state("docker.io/library/nginx:1.27", old_digest, new_digest),
             new={"inputs": tpl_state("docker.io/library/nginx:1.27")["inputs"]}, replaceReasons=["digest"]),
        step("update", CT, "web", old=old, new={"inputs": ct_inputs("web", template=UNKNOWN),
                                                 "deps": {"template": [urn(TPL, name)]}}),
    ))
    assert bullets(summary) == [
        "- 🟠 **pve1 / web** — **image upgrade**: new digest of `docker.io/library/nginx:1.27` "
        "(sha256:111111111111 -> sha256:222222222222): backup to `local`, then recreate CT 200, health gate 300 s; "
        "no data volumes, its root disk starts fresh (the backup holds the old one)",
        "- images: pull the new digest of `docker.io/library/nginx:1.27` (sha256:111111111111 -> sha256:222222222222)",
    ]


def test_a_ct_listed_only_because_its_archive_updates_in_place_is_left_out():
    name = tpl_name("nginx:1.27")
    old_tpl = tpl_state("docker.io/library/nginx:1.27")
    new_inputs = {**old_tpl["inputs"], "pull_ref": "127.0.0.1:5999/library/nginx:1.27"}
    old = ct_old("web", 200)
    old["deps"] = {"template": [urn(TPL, name)]}
    summary = summarize(doc(
        step("update", TPL, name, old=old_tpl, new={"inputs": new_inputs}, diffReasons=["pull_ref"]),
        step("update", CT, "web", old=old, new={"inputs": ct_inputs("web", template=UNKNOWN),
                                                 "deps": {"template": [urn(TPL, name)]}}, diffReasons=["template"]),
    ))
    assert "0 apps change (images only)." in summary
    assert bullets(summary) == ["- images: `docker.io/library/nginx:1.27`: pull_ref: `docker.io/library/nginx:1.27` -> "
                                "`127.0.0.1:5999/library/nginx:1.27`"]


def test_old_image_comes_from_a_same_step_or_else_the_archive_name():
    old = ct_old("b", 201)
    old["deps"] = {"template": [urn(TPL, "pve1-nginx")]}
    new = {"inputs": ct_inputs("b", template=UNKNOWN), "deps": {"template": [urn(TPL, "pve1-alpine")]}}
    steps = [step("create", TPL, "pve1-alpine", new={"inputs": tpl_state("docker.io/library/alpine:3.20")["inputs"]}),
             step("update", CT, "b", old=old, new=new)]
    without = summarize(doc(*steps))
    assert "**image upgrade** `docker.io_library_b_1.0_0123456789ab` -> `docker.io/library/alpine:3.20`" in without
    same = step("same", TPL, "pve1-nginx", old=tpl_state("docker.io/library/nginx:1.27"),
                new={"inputs": tpl_state("docker.io/library/nginx:1.27")["inputs"]})
    with_sames = summarize(doc(same, *steps))
    assert "**image upgrade** `docker.io/library/nginx:1.27` -> `docker.io/library/alpine:3.20`" in with_sames


def test_drift_and_secret_only_updates():
    drifted = ct_old("web", 200)
    drifted["outputs"]["observed"] = {"memory": "1024", "cores": "1"}
    summary = summarize(doc(
        step("update", CT, "web", old=drifted, new={"inputs": ct_inputs("web")}),
        step("update", CT, "app", old=ct_old("app", 201), new={"inputs": ct_inputs("app")}, diffReasons=["secret_env"]),
    ))
    # the provider now marks the input that puts drift back (diffReasons: memory, inputs unchanged)
    marked = summarize(doc(step("update", CT, "web", old=drifted, new={"inputs": ct_inputs("web")},
                                diffReasons=["memory"])))
    assert bullets(marked) == bullets(summary)[1:]
    assert bullets(summary) == [
        "- **app** — **update**: secrets: [secret] changed (restarts the CT)",
        "- **web** — **update**: the host drifted from the stack; up puts it back (memory: 1024 on the host -> 512 MiB)",
    ]


def test_env_changes_name_the_variable_and_secret_values_stay_secret():
    summary = summarize(doc(step(
        "update", CT, "web", old=ct_old("web", 200, env={"TZ": "UTC", "OLD": "x"}),
        new={"inputs": ct_inputs("web", env={"TZ": "Europe/Berlin", "TOKEN": "[secret]"})})))
    assert bullets(summary) == [
        "- **web** — **update**: env.OLD: `x` -> (unset); env.TOKEN: (unset) -> [secret]; "
        "env.TZ: `UTC` -> `Europe/Berlin` (restarts the CT)"]


def test_truenas_apps_name_the_compose_services_that_change():
    before = "services:\n  web: {image: 'a:1'}\n  db: {image: 'pg:16'}\n"
    after = "services:\n  web: {image: 'a:2'}\n  cache: {image: 'redis:7'}\n"
    nas = {"__provider": "[secret]", "host": host("nas1"), "app": "paperless", "compose": before, "running": True}
    summary = summarize(doc(
        step("delete", NAS, "paperless", old={"inputs": nas}),
        step("delete", NAS, "wiki", old={"inputs": {**nas, "app": "wiki", "delete_data": True}}),
        step("update", NAS, "immich", old={"inputs": {**nas, "app": "immich"}},
             new={"inputs": {**nas, "app": "immich", "compose": after, "running": False}}),
        step("create", NAS, "new", new={"inputs": {**nas, "app": "new"}}),
    ))
    assert bullets(summary) == [
        "- 🔴 **nas1 / wiki** — **delete**: the TrueNAS app deleted with its data (deleteData: true)",
        "- 🔴 **nas1 / paperless** — **delete**: the TrueNAS app deleted; its ix volumes and host paths stay",
        "- **immich** — **update**: compose: services `web` changed; `cache` added; `db` removed; running: true -> false",
        "- **new** — **create**",
    ]


# ---------------------------------------------------------------- failures, limits, values

def test_a_failed_preview_shows_the_located_error_not_the_generic_one():
    summary = summarize({"diagnostics": [
        {"message": "error: invalid stack config:\nstacks/Pulumi.dev.yaml: homefleet:apps.web.memory: 'lots' is not a size\n",
         "severity": "error"},
        {"message": "RuntimeWarning: coroutine never awaited\n", "severity": "info#err"},
        {"message": "error: an unhandled error occurred: program exited with non-zero exit code: 1\n", "severity": "error"},
    ]}, stack="dev")
    assert "**❌ The preview failed.**" in summary
    assert "stacks/Pulumi.dev.yaml: homefleet:apps.web.memory: 'lots' is not a size" in summary
    assert "unhandled error" not in summary and "RuntimeWarning" not in summary
    assert summary.startswith("### homefleet preview: stack `dev`")


def test_no_changes_and_warnings():
    summary = summarize(doc(diagnostics=[{"message": "warning: pve2 is slow\nmore", "severity": "warning"}]))
    assert "No changes: the hosts already match the stack." in summary
    assert "**Warnings**\n- warning: pve2 is slow" in summary


def test_long_plans_are_cut_with_a_pointer_to_the_full_preview():
    steps = [step("create", CT, f"app{i:03d}", new={"inputs": ct_inputs(f"app{i:03d}")}) for i in range(75)]
    summary = summarize(doc(*steps))
    assert len(bullets(summary)) == 60
    assert "…and 15 more changes: see the full preview below." in summary


def test_values_render_safely():
    assert fmt(UNKNOWN) == "(known after apply)"
    assert fmt("a`b") == "`` a`b ``"
    assert fmt("line1\nline2") == "`line1⏎line2`"
    assert fmt("x" * 200).endswith("…`") and len(fmt("x" * 200)) == 82
    assert fmt("plain", "secret_env.TOKEN") == "[secret]"
    assert fmt(True) == "true" and fmt(2.0) == "2"


def test_field_changes_walk_dicts_and_lists_and_skip_outputs():
    old = {"__provider": "a", "observed": {"memory": "1"}, "env": {"A": "1"}, "volumes": [{"path": "/d", "size": 1}],
           "tags": ["a"]}
    new = {"__provider": "b", "observed": {"memory": "2"}, "env": {"A": "2"}, "volumes": [{"path": "/d", "size": 2}],
           "tags": ["a", "b"]}
    assert field_changes(old, new) == [("env.A", "1", "2"), ("tags", ["a"], ["a", "b"]), ("volumes[0].size", 1, 2)]


# ---------------------------------------------------------------- the command line

def run_cli(stdin: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "homefleet.preview_summary", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_cli_reads_stdin_and_rejects_what_is_not_a_preview():
    ok = run_cli(json.dumps(doc()), "--stack", "pve1")
    assert ok.returncode == 0 and ok.stdout.startswith("### homefleet preview: stack `pve1`")
    empty = run_cli("")
    assert empty.returncode == 2 and "stdin is empty; pipe `pulumi preview --json` into it" in empty.stderr
    garbage = run_cli("Previewing update (dev):")
    assert garbage.returncode == 2 and "stdin is not JSON from `pulumi preview --json`" in garbage.stderr
    other = run_cli("[1, 2]")
    assert other.returncode == 2 and "not the output of `pulumi preview --json`" in other.stderr


def test_a_failed_preview_never_also_says_no_changes():
    """The engine emits `same` steps for what it read before the program failed: that is no plan."""
    failed = {"message": "error: host pve1: cannot connect to 192.0.2.1:22\n", "severity": "error"}
    summary = summarize(doc(step("same", CT, "web", old={"inputs": ct_inputs("web")},
                                 new={"inputs": ct_inputs("web")}), diagnostics=[failed]))
    assert "**❌ The preview failed.**" in summary and "cannot connect" in summary
    assert "No changes" not in summary
    partial = summarize(doc(step("create", CT, "new", new={"inputs": ct_inputs("new")}), diagnostics=[failed]))
    assert "No changes" not in partial
    assert "Planned before the failure (incomplete; nothing of it is applied):" in partial


# ---------------------------------------------------------------- safe upgrades (issue 15)

def test_an_unprivileged_change_backs_up_first_and_names_the_bind_mounts():
    mounts = [{"source": "/tank/media", "path": "/media", "read_only": True}]
    old = ct_old("dns", 210, template_kind="classic", template="local:vztmpl/debian-12.tar.zst", unprivileged=False,
                 mounts=mounts)
    new = ct_inputs("dns", template_kind="classic", template="local:vztmpl/debian-12.tar.zst", unprivileged=True,
                    mounts=mounts, backup_storage="pbs-1", health_timeout=120, rollback=False)
    assert bullets(summarize(doc(step("update", CT, "dns", old=old, new={"inputs": new})))) == [
        "- 🟠 **pve1 / dns** — **recreate**: unprivileged: false -> true: backup to `pbs-1`, then recreate CT 210, "
        "health gate 120 s, rollback off; no data volumes, its root disk starts fresh (the backup holds the old one); "
        "bind mounts are not in the backup: `/tank/media` (at `/media`); "
        "also backupStorage: `local` -> `pbs-1`; healthTimeout: 300 -> 120 s; rollback: true -> false"]


def test_a_stopped_app_has_no_health_gate():
    old = ct_old("web", 200, running=False, template="local:vztmpl/a.tar")
    new = ct_inputs("web", running=False, template="local:vztmpl/b.tar")
    line = bullets(summarize(doc(step("update", CT, "web", old=old, new={"inputs": new}))))[0]
    assert "backup to `local`, then recreate CT 200, no health gate (it is not running);" in line, line


def test_upgrade_keys_missing_from_an_old_state_mean_their_defaults():
    old = ct_old("web", 200, memory=256)
    new = ct_inputs("web", memory=512, backup_storage="local", keep_backups=3, rollback=True, health_timeout=300)
    assert bullets(summarize(doc(step("update", CT, "web", old=old, new={"inputs": new}, diffReasons=[
        "memory", "backup_storage", "keep_backups", "rollback", "health_timeout"])))) == [
        "- **web** — **update**: memory: 256 -> 512 MiB"]


def test_a_change_of_only_upgrade_keys_says_the_host_is_untouched():
    old = ct_old("web", 200, keep_backups=3)
    new = ct_inputs("web", keep_backups=1)
    assert bullets(summarize(doc(step("update", CT, "web", old=old, new={"inputs": new}, diffReasons=["keep_backups"])))) \
        == ["- **web** — **update**: keepBackups: 3 -> 1 (nothing changes on the host)"]


def test_a_replace_with_delete_data_backs_up_before_the_destroy():
    vols = [{"path": "/data", "size": 1}]
    old = ct_old("db", 205, volumes=vols, delete_data=True, backup_storage="nfs-backup")
    summary = summarize(doc(step("replace", CT, "db", old=old, new={"inputs": ct_inputs("db", vmid=215, volumes=vols,
                                                                                        delete_data=True)},
                                 replaceReasons=["vmid"])))
    assert bullets(summary) == ["- 🔴 **pve1 / db** — **replace** (vmid: (unset) -> 215): CT 205 backed up to "
                                "`nfs-backup`, then deleted with its data, a new CT created; "
                                "also backupStorage: `nfs-backup` -> `local`"]


def test_a_backed_up_recreate_ranks_below_a_replace_that_starts_fresh():
    """Danger order: a replace (delete then create, no backup) before a recreate in place (backup first)."""
    summary = summarize(doc(
        step("update", CT, "alpha", old=ct_old("alpha", 200, template="local:vztmpl/a.tar"),
             new={"inputs": ct_inputs("alpha", template="local:vztmpl/b.tar")}),
        step("replace", CT, "zulu", old=ct_old("zulu", 201), new={"inputs": ct_inputs("zulu", vmid=221)},
             replaceReasons=["vmid"]),
    ))
    assert [line.split("**")[1] for line in bullets(summary)] == ["pve1 / zulu", "pve1 / alpha"]


def test_truenas_delete_data_keeps_its_wording():
    nas = {"__provider": "[secret]", "host": host("nas1"), "app": "wiki", "compose": "services: {}\n"}
    summary = summarize(doc(step("update", NAS, "wiki", old={"inputs": {**nas, "delete_data": False}},
                                 new={"inputs": {**nas, "delete_data": True}})))
    assert "deleteData: false -> true (a later delete destroys its data volumes)" in summary, summary


def test_a_volume_that_changes_slot_is_a_recreate_with_a_backup():
    """providers/ct_data.py volume_path_changes: removing /a from [/a, /b] would put /b's slot at
    another path, so the provider recreates the CT (matching volumes by path), backup first."""
    before = [{"path": "/a", "size": 1}, {"path": "/b", "size": 1}]
    summary = summarize(doc(step("update", CT, "web", old=ct_old("web", 200, volumes=before),
                                 new={"inputs": ct_inputs("web", volumes=before[1:])})))
    assert bullets(summary) == [
        "- 🟠 **pve1 / web** — **recreate**: a data volume changes slot (`/a` -> `/b`): backup to `local`, then "
        "recreate CT 200, health gate 300 s; data volumes carried over (`/b`); `/a` stays on a holder CT "
        "(the app no longer names it)"]
