"""ZFS datasets and snapshots of the fake NAS, and the files in them.

State (under `$SIM_STATE/sim/truenas/`): `datasets.json` lists dataset ids (default: one
per pool, the pool's root dataset), mounted at `/mnt/<id>`; `snapshots.json` lists the
snapshots; the files of a path `/mnt/...` live in `fs/mnt/...`, a snapshot's copy in
`snapdata/<dataset>@<name>/`. As in ZFS, a dataset's snapshot holds its own files, not a
child dataset's.

Methods (truenas/middleware, src/middlewared/middlewared/plugins/):
* 24.10 / 25.04: `zfs.snapshot.create` (`zfs_/snapshot.py` `ZFSSnapshot.do_create`: one
  object `{dataset, name | naming_schema, recursive, exclude, vmware_sync, properties}`;
  `You must specify either name or naming schema`, `Invalid snapshot name`; a libzfs
  failure is `Failed to snapshot DS@NAME: ...`, EEXIST when it `already exists`),
  `zfs.snapshot.query` and `zfs.snapshot.rollback` (`zfs_/snapshot_actions.py`
  `rollback(id, {recursive, recursive_clones, force, recursive_rollback})`, which runs
  `zfs rollback` and raises `Failed to rollback snapshot: <zfs's stderr>`).
* 25.10: the same under `pool.snapshot.*` (`pool_/snapshot.py` `PoolSnapshotService`,
  which calls the now private `zfs.snapshot.*`); the `zfs.snapshot.*` names are private
  there and not callable from midclt.
* `pool.dataset.query` (every version): `id`, `name`, `pool`, `type`, `mountpoint`.

Test images: a `.../test-app:<version>[-suffix]` container writes `/data/migrated-by-<version>`
into the host path mounted at `/data` when it starts (BRIEF: test-app 2.1-unhealthy and
2.2-crash migrate their data before failing).
"""

from __future__ import annotations

import errno
import re
import shutil
import time
from pathlib import Path

from .errors import CallError, ValidationErrors

SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
CREATE_KEYS = ("dataset", "name", "naming_schema", "recursive", "exclude", "vmware_sync", "properties")
ROLLBACK_KEYS = ("recursive", "recursive_clones", "force", "recursive_rollback")


def root(state_root: Path) -> Path:
    return state_root / "fs"


def folder(state_dir: Path, path: str) -> Path:
    """Test helper: where the files of the NAS path `path` are (state_dir: the host's state)."""
    return root(Path(state_dir) / "sim" / "truenas") / path.lstrip("/")


def add(state_dir: Path, dataset: str) -> None:
    """Test helper: create a dataset (its parent must exist)."""
    from . import store
    with store.locked(Path(state_dir) / "sim" / "truenas") as state:
        if dataset not in state.datasets:
            state.datasets.append(dataset)
        (root(state.root) / "mnt" / dataset).mkdir(parents=True, exist_ok=True)


def _files(state, dataset: str) -> Path:
    return root(state.root) / "mnt" / dataset


def _children(state, dataset: str) -> list:
    return [d for d in state.datasets if d.startswith(dataset + "/")]


def _copy(state, dataset: str, target: Path) -> None:
    """The dataset's own files (not its children's) into `target`."""
    source = _files(state, dataset)
    skip = {(root(state.root) / "mnt" / child).resolve() for child in _children(state, dataset)}

    def ignore(folder_, names):
        return [n for n in names if (Path(folder_) / n).resolve() in skip]

    if source.exists():
        shutil.copytree(source, target, ignore=ignore, symlinks=True)
    else:
        target.mkdir(parents=True)


def _entry(snap: dict) -> dict:
    dataset, name = snap["id"].split("@", 1)
    return {"id": snap["id"], "name": snap["id"], "pool": dataset.split("/", 1)[0], "type": "SNAPSHOT",
            "snapshot_name": name, "dataset": dataset, "createtxg": str(snap["txg"]),
            "properties": {"creation": {"parsed": snap["created"]}}}


def _namespace_ok(ctx, method: str) -> None:
    public = "pool.snapshot" if ctx.version >= (25, 10) else "zfs.snapshot"
    if not method.startswith(public):
        from .errors import ClientError
        raise ClientError("Method does not exist")


def snapshot_create(ctx, args: list, method: str = "zfs.snapshot.create"):
    _namespace_ok(ctx, method)
    ctx.schema.arg_count(method, args, 1, 1)
    data = args[0]
    if not isinstance(data, dict):
        raise ValidationErrors.one("snapshot_create", ctx.schema.not_type("dict"))
    extra = [k for k in data if k not in CREATE_KEYS]
    if extra:
        raise ValidationErrors.one(f"snapshot_create.{extra[0]}", ctx.schema.extra_key())
    dataset = data.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise ValidationErrors.one("snapshot_create.dataset", ctx.schema.required())
    if "name" in data and "naming_schema" in data:
        raise ValidationErrors.one("snapshot_create.naming_schema",
                                   "You can't specify name and naming schema at the same time")
    name = data.get("name") or (time.strftime(data["naming_schema"]) if data.get("naming_schema") else None)
    if not name:
        raise ValidationErrors.one("snapshot_create.naming_schema", "You must specify either name or naming schema")
    if not SNAPSHOT_NAME.match(name):
        raise ValidationErrors.one("snapshot_create.name", "Invalid snapshot name")
    state = ctx.state
    sid = f"{dataset}@{name}"
    if dataset not in state.datasets:
        raise CallError(f"Failed to snapshot {sid}: dataset does not exist")
    if any(s["id"] == sid for s in state.snapshots):
        raise CallError(f"Failed to snapshot {sid}: dataset already exists", errno.EEXIST)
    datasets = [dataset] + (_children(state, dataset) if data.get("recursive") else [])
    for ds in datasets:
        _copy(state, ds, state.root / "snapdata" / f"{ds}@{name}")
        state.snapshots.append({"id": f"{ds}@{name}", "txg": _txg(state), "created": time.time()})
    return _entry(next(s for s in state.snapshots if s["id"] == sid))


def _txg(state) -> int:
    return max([s["txg"] for s in state.snapshots] + [1000]) + 1


def snapshot_query(ctx, args: list, method: str = "zfs.snapshot.query"):
    _namespace_ok(ctx, method)
    from .schema import matches
    filters, options = ctx.schema.filters(method, args)
    found = [e for e in (_entry(s) for s in ctx.state.snapshots) if matches(e, filters)]
    select = options.get("select")
    return [{k: e[k] for k in select if k in e} for e in found] if select else found


def snapshot_rollback(ctx, args: list, method: str = "zfs.snapshot.rollback"):
    _namespace_ok(ctx, method)
    ctx.schema.arg_count(method, args, 1, 2)
    sid = args[0]
    options = args[1] if len(args) > 1 else {}
    if not isinstance(sid, str):
        raise ValidationErrors.one("id", ctx.schema.not_type("str"))
    options = ctx.schema.mapping("options", options, ROLLBACK_KEYS, {k: "bool" for k in ROLLBACK_KEYS})
    state = ctx.state
    snap = next((s for s in state.snapshots if s["id"] == sid), None)
    if snap is None:
        raise CallError(f"Failed to rollback snapshot: cannot open '{sid}': dataset does not exist")
    dataset = sid.split("@", 1)[0]
    newer = [s for s in state.snapshots if s["id"].split("@", 1)[0] == dataset and s["txg"] > snap["txg"]]
    if newer and not (options.get("recursive") or options.get("recursive_clones")):
        raise CallError("Failed to rollback snapshot: cannot rollback to '" + sid + "': more recent snapshots or "
                        "bookmarks exist\nuse '-r' to force deletion of the following snapshots and bookmarks:\n"
                        + "\n".join(s["id"] for s in newer))
    for s in newer:                   # `zfs rollback -r` destroys them
        state.snapshots.remove(s)
        shutil.rmtree(state.root / "snapdata" / s["id"], ignore_errors=True)
    target = _files(state, dataset)
    keep = {(root(state.root) / "mnt" / c).resolve() for c in _children(state, dataset)}
    if target.exists():
        for item in target.iterdir():
            if item.resolve() in keep or any(k.is_relative_to(item.resolve()) for k in keep):
                continue
            shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
    shutil.copytree(state.root / "snapdata" / sid, target, dirs_exist_ok=True, symlinks=True)
    return None


def snapshot_delete(ctx, args: list, method: str = "zfs.snapshot.delete"):
    _namespace_ok(ctx, method)
    ctx.schema.arg_count(method, args, 1, 2)
    sid = args[0]
    snap = next((s for s in ctx.state.snapshots if s["id"] == sid), None)
    if snap is None:
        raise CallError(f"Failed to delete snapshot: cannot open '{sid}': dataset does not exist", errno.ENOENT)
    ctx.state.snapshots.remove(snap)
    shutil.rmtree(ctx.state.root / "snapdata" / sid, ignore_errors=True)
    return True


def dataset_query(ctx, args: list):
    from .schema import matches
    filters, options = ctx.schema.filters("pool.dataset.query", args)
    found = [{"id": d, "name": d, "pool": d.split("/", 1)[0], "type": "FILESYSTEM", "mountpoint": f"/mnt/{d}"}
             for d in sorted(ctx.state.datasets)]
    found = [e for e in found if matches(e, filters)]
    select = options.get("select")
    return [{k: e[k] for k in select if k in e} for e in found] if select else found


TEST_APP = re.compile(r"/test-app:(\d+(?:\.\d+)*)")


def app_writes(state, config) -> None:
    """What the test-app images do when they start: write /data/migrated-by-<version>."""
    from .workloads import services
    for service in services(config).values():
        found = TEST_APP.search(str(service.get("image", ""))) if isinstance(service, dict) else None
        if not found:
            continue
        for item in service.get("volumes") or []:
            source, _, rest = str(item).partition(":") if not isinstance(item, dict) else (
                item.get("source", ""), "", item.get("target", ""))
            if rest.split(":", 1)[0] == "/data" and source.startswith("/mnt/"):
                where = root(state.root) / source.lstrip("/")
                where.mkdir(parents=True, exist_ok=True)
                (where / f"migrated-by-{found.group(1)}").write_text(f"test-app {found.group(1)}\n")


def methods() -> dict:
    out = {"pool.dataset.query": dataset_query}
    for prefix in ("zfs.snapshot", "pool.snapshot"):
        for verb, func in (("create", snapshot_create), ("query", snapshot_query),
                           ("rollback", snapshot_rollback), ("delete", snapshot_delete)):
            name = f"{prefix}.{verb}"
            out[name] = (lambda f, n: lambda ctx, args: f(ctx, args, n))(func, name)
    return out


ROLES = {"pool.dataset.query": "DATASET_READ",
         **{f"{p}.{v}": "SNAPSHOT_READ" if v == "query" else "SNAPSHOT_WRITE"
            for p in ("zfs.snapshot", "pool.snapshot") for v in ("create", "query", "rollback", "delete")}}
