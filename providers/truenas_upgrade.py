"""Safe compose updates of a TrueNAS app: record, snapshot, update, health gate, revert (issue 15).

TrueNAS keeps no way back for a custom app: `app.update` re-writes the one compose in place
(crud.py `update_internal` -> ix_apps/lifecycle.py `update_app_config`, same version
folder) and does not undo it when `up` fails; `app.rollback` only goes back to an older
catalog *version* folder (rollback.py, `get_rollback_versions`), which a custom app never
has (`Specified version is not available for rollback`). So homefleet keeps the way back:

1. before the update, `Previous.of` holds the compose the NAS runs (in memory only: it may
   hold secrets) and records its digest and every service's pinned image (`name:tag@sha256:...`);
2. with `snapshotDatasets: true` and an image change, `snapshot` takes a ZFS snapshot of each
   dataset holding one of the app's host paths (`homefleet-<app>-<UTC stamp>`), keeping the
   newest `keep_backups` (the stack's keepBackups, default 3) of homefleet's per dataset;
   datasets that are a pool's root or hold another app's host paths are refused before anything
   changes (a rollback would revert their data too);
3. after the update the caller waits for health (providers/truenas_health.py);
4. when the app does not get healthy and `rollback` is on, `revert`: with snapshots, stop
   the app, roll each dataset back, put the previous compose back, start; without, put the
   previous compose back (which runs `up`); then wait for health again. The previous compose
   is sent with its pins, so exactly the previous images run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .errors import HostCommandError
from .hosts import midclt
from .hosts import zfs_snapshots as zfs
from . import log
from .truenas_outputs import _bool, _outputs, desired_config

KEEP = 3


def images_of(config) -> dict:
    """{service: image} as the compose names them (pinned on the NAS)."""
    services = config.get("services") if isinstance(config, dict) else None
    return {name: body.get("image") for name, body in (services or {}).items()
            if isinstance(body, dict) and isinstance(body.get("image"), str)}


@dataclass
class Previous:
    compose: dict                                  # never in state or logs
    images: dict
    state: Optional[str] = None
    snapshots: list = field(default_factory=list)

    @classmethod
    def of(cls, current: dict) -> "Previous":
        return cls(current["config"], images_of(current["config"]), current["entry"].get("state"))

    def record(self) -> dict:
        """The `previous` output: digests only."""
        return {"compose_digest": midclt.digest(self.compose), "images": dict(sorted(self.images.items())),
                "snapshots": list(self.snapshots)}


def image_change(previous: Previous, sent: dict) -> bool:
    return images_of(sent) != previous.images


def snapshot(host, previous: Previous, sent: dict, version: tuple) -> None:
    """Snapshot the datasets that hold the app's host paths (both old and new compose)."""
    paths = zfs.bind_sources(previous.compose) + [p for p in zfs.bind_sources(sent)
                                                  if p not in zfs.bind_sources(previous.compose)]
    if not paths:
        log.info(host.target.name, host.app, "snapshotDatasets: the app mounts no host path; nothing to snapshot")
        return
    step = "snapshotDatasets: finding the datasets (pool.dataset.query)"
    entries = host.call("pool.dataset.query", *zfs.dataset_query(paths), step=step)
    datasets = []
    for path in paths:
        dataset = zfs.dataset_of(path, entries)
        if dataset is None:
            raise host.fail(step, f"no dataset holds {path}; snapshotDatasets needs the app's host paths on a pool")
        if "/" not in dataset:
            raise host.fail(step, f"{path} is in the root dataset of pool {dataset}: rolling it back would revert "
                                  "everything in the pool — create a dataset for the app (Datasets > Add Dataset, "
                                  f"e.g. {dataset}/apps/{host.app}), move its data there, or set snapshotDatasets: "
                                  "false")
        if dataset not in datasets:
            datasets.append(dataset)
    _refuse_shared(host, datasets, entries)
    name = zfs.snapshot_name(host.app)
    for dataset in datasets:
        host.call(zfs.method("create", version), zfs.create_payload(dataset, name),
                  step=f"snapshotDatasets: {zfs.method('create', version)} {dataset}@{name}")
        previous.snapshots.append(f"{dataset}@{name}")
        _prune(host, dataset, version)
    log.info(host.target.name, host.app, "snapshot before the upgrade: " + ", ".join(previous.snapshots))


def _refuse_shared(host, datasets: list, entries) -> None:
    """No other app may keep host paths in a dataset we would roll back."""
    others = host.call("app.query", [["name", "!=", host.app]], {"extra": {"retrieve_config": True}},
                       step="snapshotDatasets: checking other apps' host paths (app.query)")
    mounts = {e.get("id"): e.get("mountpoint") for e in entries if isinstance(e, dict)}
    for other in others if isinstance(others, list) else []:
        for path in zfs.bind_sources(other.get("config")):
            dataset = zfs.dataset_of(path, entries)
            if dataset in datasets and zfs.inside(path, mounts.get(dataset) or "/"):
                raise host.fail("snapshotDatasets", f"the dataset {dataset} also holds {path} of the app "
                                f"{other.get('name')}: rolling it back would revert that app's data too — give "
                                f"{host.app} a dataset of its own, or set snapshotDatasets: false")


def _prune(host, dataset: str, version: tuple) -> None:
    found = host.call(zfs.method("query", version), [["dataset", "=", dataset]], {"select": ["id"]},
                      step=f"snapshotDatasets: listing the snapshots of {dataset}")
    keep = max(1, int(host.props.get("keep_backups") or KEEP))
    for sid in zfs.ours(found, host.app, dataset)[:-keep]:
        host.call(zfs.method("delete", version), sid, step=f"snapshotDatasets: deleting the old snapshot {sid}")


def revert(host, previous: Previous, version: tuple, wait) -> str:
    """Put the previous version back; what was done, for the error message. `wait(config)`:
    the health gate, ("settled"|verdict, entry)."""
    done = []
    try:
        if previous.snapshots:
            host.job("app.stop", host.app, step="reverting: app.stop")
            host.wait_stopped()
            for sid in previous.snapshots:
                host.call(zfs.method("rollback", version), sid, zfs.ROLLBACK_OPTIONS,
                          step=f"reverting: {zfs.method('rollback', version)} {sid}")
                done.append(f"rolled back the snapshot {sid}")
        host.job("app.update", host.app, midclt.update_payload(previous.compose), step="reverting: app.update",
                 payload=True)
        done.insert(0, "put the previous compose back (" + ", ".join(
            f"{name}: {image}" for name, image in sorted(previous.images.items())) + ")")
        if previous.snapshots and previous.state != "STOPPED":
            host.job("app.start", host.app, step="reverting: app.start")
        if previous.state == "STOPPED":
            return "reverted to the previous version: " + "; ".join(done) + " (it was stopped before)"
        verdict, entry = wait(previous.compose)
    except HostCommandError as exc:
        return ("the revert failed: " + str(exc) + ("; done before: " + "; ".join(done) if done else "")
                + "\nto revert by hand, see docs/truenas.md (Upgrades: reverting by hand)"
                + _snapshots_hint(previous))
    if verdict != "settled":
        return ("reverted to the previous version: " + "; ".join(done) + "; but it is not healthy either: "
                + entry.get("__report", verdict) + _snapshots_hint(previous))
    return "reverted to the previous version: " + "; ".join(done) + "; it is healthy again"


def _snapshots_hint(previous: Previous) -> str:
    if not previous.snapshots:
        return ""
    return "\nthe snapshots taken before the upgrade: " + ", ".join(previous.snapshots)


def apply(host, props: dict, current: dict, version: tuple) -> dict:
    """Bring an existing (owned) app to `props`: stop, update the compose, start, as needed.
    A compose update that leaves the app unhealthy is reverted (providers/py)."""
    want_running = _bool(props.get("running"), True)
    state = current["entry"].get("state")
    config = desired_config(props)
    pins = host.resolve(config)        # a tag that moved since the last run becomes an update here
    sent = midclt.with_images(config, pins)
    steps = []
    previous = Previous.of(current)
    if not want_running and state != "STOPPED":
        host.job("app.stop", host.app, step="app.stop")
        steps.append("stopped")
        state = "STOPPED"
    updated = midclt.digest(current["config"]) != midclt.digest(sent)
    if updated:      # app.update runs `up` itself unless the app is STOPPED
        moved = sorted(name for name, pin in pins.items()
                       if midclt.stored_pins(current["config"], config).get(name) not in (None, pin))
        if moved:
            steps.append("image moved: " + ", ".join(f"{name} -> {pins[name].split('@', 1)[1][:19]}" for name in moved))
        if _bool(props.get("snapshot_datasets"), False) and image_change(previous, sent):
            snapshot(host, previous, sent, version)
        payload = midclt.update_payload(sent)
        host.job("app.update", host.app, payload, step="app.update", payload=True)
        steps.append("compose updated")
    if want_running and (state == "STOPPED" or (state == "CRASHED" and not updated)):
        host.job("app.start", host.app, step="app.start")
        steps.append("started")
    log.info(host.target.name, host.app, ", ".join(steps) or "outputs only")
    verdict, entry = host.settle(want_running, config)
    if verdict != "settled":
        report = host.failure_report(entry)
        if not updated:
            tail = "fix it and run `pulumi up` again"
        elif _bool(props.get("rollback"), True):
            log.info(host.target.name, host.app, "the update is not healthy; reverting to the previous version")
            tail = (revert(host, previous, version, lambda cfg: host.settle(True, cfg))
                    + "\nthe state keeps the previous version, so the next preview shows the update again; "
                      "fix it and run `pulumi up` again")
        else:
            tail = ("rollback: false, so the new compose stays on the NAS (TrueNAS does not roll back an update); "
                    "fix it and run `pulumi up` again")
        raise host.fail("app.update" if updated else "app.start", report + "\n" + tail)
    outs = _outputs(props, entry, config, version, pins)
    if updated:
        outs["previous"] = previous.record()
    return outs
