"""An app's folder on a TrueNAS host through the middleware: builders (inputs -> midclt arguments)
and parsers. truenas/middleware, src/middlewared/middlewared/plugins/:

* `filesystem.py` `FilesystemService.stat(path)` -> `realpath`, `type`, `uid`, `gid`;
  a missing path fails `[ENOENT] Path <path> not found`.
* `FilesystemService.mkdir({path, options: {mode, raise_chmod_error}})`: one level (os.mkdir),
  `[EEXIST] <path>: path already exists.`, only under `/mnt/` (`path not permitted`).
* `filesystem_/acl.py` `chown({path, uid, gid})`: a job; owner 568/568 is TrueNAS's `apps`.
* `FilesystemService.file_receive(path, content_base64, {mode, uid, gid})`: a private method that
  midclt, running as root on the NAS, may call (25.04: no check; 25.10 rpc.py
  `_can_call_private_methods` only logs). `filesystem.put` is the public upload, but it reads an
  input pipe that only the HTTP `/_upload` endpoint feeds, not midclt. The content is the last
  argument, so it travels on stdin (midclt.payload_call), never in a command line.
"""

from __future__ import annotations

import base64
import posixpath
from typing import Optional

from . import midclt

FOLDER_MODE = "755"


def parents_to_make(root: str) -> list:
    """The folders from the pool's mount point down to `root` (`/mnt/tank/apps/web` ->
    [/mnt/tank/apps, /mnt/tank/apps/web]): the pool's own folder always exists."""
    parts = root.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(3, len(parts) + 1)]


def mkdir_args(path: str) -> dict:
    return {"path": path, "options": {"mode": FOLDER_MODE}}


def chown_args(path: str, uid: int, gid: int) -> dict:
    return {"path": path, "uid": int(uid), "gid": int(gid)}


def receive_args(path: str, content_b64: str, mode: str, uid: int, gid: int) -> list:
    return [path, content_b64, {"mode": int(mode, 8), "uid": int(uid), "gid": int(gid)}]


def receive_call(args: list, sudo: bool) -> tuple:
    """(argv, stdin) of `filesystem.file_receive` with `args` (receive_args) on stdin, on every version."""
    return midclt.helper_call("filesystem.file_receive", *args, sudo=sudo)


def escapes(stat: Optional[dict], path: str) -> Optional[str]:
    """Why a folder homefleet writes into is not what it should be (a symlink a container put
    there leads elsewhere: 24.10/25.04's file_receive follows it), or None."""
    if not isinstance(stat, dict):
        return None
    if stat.get("type") != "DIRECTORY" or posixpath.normpath(str(stat.get("realpath") or path)) != path:
        return f"{path} is not a folder of the app's own (it is {stat.get('type')} -> {stat.get('realpath')})"
    return None


def content_of(item: dict) -> str:
    """The base64 content as file_receive takes it (re-encoded: the input is checked once more)."""
    return base64.b64encode(base64.b64decode(item["content"])).decode()
