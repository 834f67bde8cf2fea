"""`filesystem.*` methods of the fake NAS: folders and small files under `/mnt/`, with owners.

Files live where datasets.py keeps them (`fs/mnt/...` in the middleware state); owners are
recorded in `owners.json` ({path: [uid, gid]}: the simulator runs unprivileged), a path
missing there is root's (0, 0). Upstream (truenas/middleware, src/middlewared/middlewared/):

* `plugins/filesystem.py` `FilesystemService.mkdir({path, options: {mode: '755',
  raise_chmod_error: true}})`: `<path>: not an absolute path.` (EINVAL), `<path>: path already
  exists.` (EEXIST), a parent that is missing fails (os.mkdir: ENOENT), and only paths whose
  realpath is under `/mnt/` (or an admin's `.ssh`) are permitted (`path not permitted`, EPERM).
* `FilesystemService.stat(path)`: `realpath`, `type` (DIRECTORY/FILE/SYMLINK), `uid`, `gid`,
  `mode`, `size`; a missing path is `Path <path> not found` (ENOENT).
* `FilesystemService.file_receive(path, content, {append, mode, uid, gid})` (private; midclt as
  root may call it): base64 `content`, parents created (os.makedirs), written with `wb+`
  (truncated in place, the same inode), then fchmod and fchown. 24.10/25.04 open the path
  following symlinks; master opens it with RESOLVE_NO_SYMLINKS (`safe_open`).
* `plugins/filesystem_/acl.py` `chown({path, uid, gid, options: {recursive, traverse}})`: a job
  (`@job(lock="perm_change")`); `Path <path> not found` when it is missing.
"""

from __future__ import annotations

import base64
import binascii
import errno
import json
import os
from pathlib import Path

from .datasets import root
from .errors import CallError, ValidationErrors

MKDIR_OPTIONS = ("mode", "raise_chmod_error")
RECEIVE_OPTIONS = ("append", "mode", "uid", "gid")
PERMITTED = ("/mnt/", "/root/.ssh", "/home/admin/.ssh", "/home/truenas_admin/.ssh")


def _local(state, path: str) -> Path:
    for dataset in state.datasets:          # every dataset is mounted at /mnt/<id>, as on the NAS
        (root(state.root) / "mnt" / dataset).mkdir(parents=True, exist_ok=True)
    return root(state.root) / path.lstrip("/")


def _owners(state) -> dict:
    try:
        return json.loads((state.root / "owners.json").read_text())
    except (OSError, ValueError):
        return {}


def _set_owner(state, path: str, uid: int, gid: int) -> None:
    owners = _owners(state)
    old = owners.get(path, [0, 0])
    owners[path] = [old[0] if uid in (None, -1) else uid, old[1] if gid in (None, -1) else gid]
    (state.root / "owners.json").write_text(json.dumps(owners, indent=1, sort_keys=True))


def _realpath(state, path: str) -> str:
    """The NAS path `path` resolves to (symlinks inside the fake filesystem followed)."""
    base = root(state.root).resolve()
    real = _local(state, path).resolve()
    try:
        return "/" + str(real.relative_to(base))
    except ValueError:
        return str(real)


def owner(state_dir: Path, path: str) -> tuple:
    """Test helper: (uid, gid) of the NAS path `path`."""
    owners = _owners(type("S", (), {"root": Path(state_dir) / "sim" / "truenas"})())
    return tuple(owners.get(path, [0, 0]))


def _absolute(path, attr: str) -> str:
    if not isinstance(path, str) or not path:
        raise ValidationErrors.one(attr, "Field required")
    if not path.startswith("/"):
        raise CallError(f"{path}: not an absolute path.", errno.EINVAL)
    return path


def stat(ctx, args: list):
    ctx.schema.arg_count("filesystem.stat", args, 1, 1)
    path = _absolute(args[0], "filesystem_stat.path")
    local = _local(ctx.state, path)
    if not local.exists() and not local.is_symlink():
        raise CallError(f"Path {path} not found", errno.ENOENT)
    st = local.lstat()
    kind = "SYMLINK" if local.is_symlink() else "DIRECTORY" if local.is_dir() else "FILE"
    uid, gid = _owners(ctx.state).get(path, [0, 0])
    return {"realpath": _realpath(ctx.state, path), "type": kind, "size": st.st_size, "mode": st.st_mode,
            "uid": uid, "gid": gid, "acl": False}


def mkdir(ctx, args: list):
    ctx.schema.arg_count("filesystem.mkdir", args, 1, 1)
    data = args[0]
    if isinstance(data, str) and ctx.version < (25, 4):        # 24.10's deprecated form: mkdir(path)
        data = {"path": data}
    data = ctx.schema.mapping("filesystem_mkdir", data, ("path", "options"), {"path": "str", "options": "dict"})
    options = ctx.schema.mapping("filesystem_mkdir.options", data.get("options") or {}, MKDIR_OPTIONS,
                                 {"mode": "str", "raise_chmod_error": "bool"})
    path = _absolute(data.get("path"), "filesystem_mkdir.path")
    mode = int(str(options.get("mode", "755")), 8)
    local = _local(ctx.state, path)
    if local.exists() or local.is_symlink():
        raise CallError(f"{path}: path already exists.", errno.EEXIST)
    if not _realpath(ctx.state, path).startswith(PERMITTED):
        raise CallError(f"{path}: path not permitted", errno.EPERM)
    if not local.parent.is_dir():
        raise CallError(f"[Errno 2] No such file or directory: {path!r}", errno.ENOENT)
    local.mkdir(mode=0o700)
    local.chmod(mode | 0o700)          # the simulator's own user keeps access to what it stores
    return {"name": local.name, "path": path, "realpath": _realpath(ctx.state, path), "type": "DIRECTORY",
            "size": 0, "mode": 0o40000 | mode, "acl": False, "uid": 0, "gid": 0, "is_mountpoint": False,
            "is_ctldir": False}


def file_receive(ctx, args: list):
    ctx.schema.arg_count("filesystem.file_receive", args, 2, 3)
    path = _absolute(args[0], "path")
    content = args[1]
    options = ctx.schema.mapping("options", args[2] if len(args) > 2 else {}, RECEIVE_OPTIONS,
                                 {"append": "bool", "mode": "int", "uid": "int", "gid": "int"})
    if not isinstance(content, str):
        raise ValidationErrors.one("content", ctx.schema.not_type("str"))
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise CallError("Incorrect padding", errno.EINVAL) from None
    local = _local(ctx.state, path)
    local.parent.mkdir(parents=True, exist_ok=True)    # os.makedirs, following symlinks (24.10/25.04)
    with open(local, "ab" if options.get("append") else "wb+") as handle:
        handle.write(data)
    if options.get("mode"):
        os.chmod(local, options["mode"] | 0o600)
    _set_owner(ctx.state, _realpath(ctx.state, path), options.get("uid", -1), options.get("gid", -1))
    return True


def chown(ctx, args: list):
    from . import jobs
    ctx.schema.arg_count("filesystem.chown", args, 1, 1)
    data = ctx.schema.mapping("filesystem_chown", args[0], ("path", "uid", "gid", "user", "group", "options"),
                              {"path": "str", "uid": "int", "gid": "int", "options": "dict"})
    path = _absolute(data.get("path"), "filesystem_chown.path")
    if data.get("uid") is None and data.get("gid") is None:
        raise ValidationErrors.one("filesystem_chown", "At least one of uid, gid, user, and group must be set "
                                   "in chown payload")
    if not _local(ctx.state, path).exists():
        outcome = CallError(f"Path {path} not found", errno.ENOENT)
    else:
        _set_owner(ctx.state, path, data.get("uid", -1), data.get("gid", -1))
        outcome = None
    return jobs.submit(ctx.state, "filesystem.chown", args, outcome, "")


METHODS = {"filesystem.stat": stat, "filesystem.mkdir": mkdir, "filesystem.file_receive": file_receive,
           "filesystem.chown": chown}
ROLES = {"filesystem.stat": "FILESYSTEM_ATTRS_READ", "filesystem.mkdir": "FILESYSTEM_DATA_WRITE",
         "filesystem.file_receive": "FULL_ADMIN", "filesystem.chown": "FILESYSTEM_ATTRS_WRITE"}
JOB_METHODS = ("filesystem.chown",)
