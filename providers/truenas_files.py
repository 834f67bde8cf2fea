"""TrueNASAppFiles: a compose app's folder on a TrueNAS host, `<appRoot>/<app>/` (homefleet/compose/truenas_appdir.py).

Inputs: host, app, root, uid/gid (the app folder's owner), dirs [{path, uid, gid}] (relative), files
[{path, sha256, mode, uid, gid, content (base64)}] (a secret: a config file may hold a password),
delete_data, sudo, generation.
create/update: the folders that are missing (filesystem.mkdir, then filesystem.chown to their owner:
568 `apps` unless the service runs as another uid); existing folders and their owners are left as
they are. Then each new or changed file (filesystem.file_receive), after checking that its folder
is still the app's own (no symlink a container put there).
read: the folder is still there. delete: nothing is removed: the folder holds the users' data, and
the middleware offers no call that removes a file (with deleteData the preview says so).
"""

from __future__ import annotations

import posixpath
import re
from typing import Optional

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from . import log
from .app_files import file_digests, folder_diff
from .base import HomefleetProvider, target_of
from .errors import HostCommandError
from .hosts import midclt, nasfiles
from .transport import run
from .truenas_app import CALL_TIMEOUT, _Host

_ROOT = re.compile(r"^/mnt/[A-Za-z0-9._+@/-]+$")
_REL = re.compile(r"^[A-Za-z0-9._+@-]+(/[A-Za-z0-9._+@-]+)*$")
_MODE = re.compile(r"^0[0-7]{3}$")


def _bad_rel(path) -> bool:
    return not _REL.match(path or "") or any(part in (".", "..") for part in str(path).split("/"))


class _Folder(_Host):
    def stat(self, path: str) -> Optional[dict]:
        """`filesystem.stat`, or None when the path does not exist."""
        argv = midclt.call_argv("filesystem.stat", path, sudo=self.sudo)
        result = run(self.target, argv, timeout=CALL_TIMEOUT)
        try:
            return midclt.parse_output(result.stdout, result.stderr, result.exit_code)
        except midclt.MidcltError as exc:
            if exc.errno_name == "ENOENT":
                return None
            raise self.fail(f"looking at {path} (filesystem.stat)", exc.message) from None


    def receive(self, path: str, args: list) -> None:
        """`filesystem.file_receive`, every argument on stdin: the content is not the last one, so
        26.0's `-` cannot carry it (midclt.helper_call)."""
        argv, stdin = nasfiles.receive_call(args, sudo=self.sudo)
        result = run(self.target, argv, stdin=stdin, timeout=CALL_TIMEOUT)
        try:
            midclt.parse_output(result.stdout, result.stderr, result.exit_code)
        except midclt.MidcltError as exc:
            raise self.fail(f"writing {path} (filesystem.file_receive)", exc.message) from None


class TrueNASAppFilesProvider(HomefleetProvider):
    def check(self, olds: dict, news: dict) -> CheckResult:
        failures = []
        root = news.get("root") or ""
        if not _ROOT.match(root) or any(part in (".", "..") for part in root.split("/")):
            failures.append(CheckFailure("root", "must be a folder under /mnt/ without '..'"))
        for item in news.get("dirs") or []:
            if _bad_rel(item.get("path")) or not isinstance(item.get("uid"), (int, float)):
                failures.append(CheckFailure("dirs", "each folder is a relative path and a numeric uid/gid"))
        files = news.get("files")
        for item in files if isinstance(files, list) else []:
            if _bad_rel(item.get("path")) or not _MODE.match(str(item.get("mode", ""))):
                failures.append(CheckFailure("files", "each file is a relative path and a mode like 0644"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict, news: dict) -> DiffResult:
        return folder_diff(olds, news, ("dirs", "delete_data", "uid", "gid"))

    def create(self, props: dict) -> CreateResult:
        self._apply(props, {})
        return CreateResult(f"{target_of(props).name}:{props['root']}", dict(props))

    def update(self, _id: str, olds: dict, news: dict) -> UpdateResult:
        self._apply(news, file_digests(olds))
        return UpdateResult(dict(news))

    def _apply(self, props: dict, had: dict) -> None:
        host = _Folder(props)
        root = props["root"]
        owners = {root: (props.get("uid", 568), props.get("gid", 568))}
        owners.update({f"{root}/{d['path']}": (d["uid"], d["gid"]) for d in props.get("dirs") or []})
        folders = nasfiles.parents_to_make(root)[:-1] + sorted(owners)
        seen = {}
        for path in folders:
            seen[path] = host.stat(path)
            if seen[path] is not None:
                continue
            host.call("filesystem.mkdir", nasfiles.mkdir_args(path), step=f"creating {path} (filesystem.mkdir)")
            if path in owners:
                uid, gid = owners[path]
                host.job("filesystem.chown", nasfiles.chown_args(path, uid, gid),
                         step=f"giving {path} to uid {uid} (filesystem.chown)")
            seen[path] = {"type": "DIRECTORY", "realpath": path}
            log.info(host.target.name, props["app"], f"created {path}")
        for item in props.get("files") or []:
            if had.get(item["path"]) == item["sha256"]:
                continue
            path = f"{root}/{item['path']}"
            folder = posixpath.dirname(path)
            problem = nasfiles.escapes(host.stat(folder), folder)
            if problem:
                raise HostCommandError(host.target.name, f"writing {path}", problem + "; remove it and run again")
            host.receive(path, nasfiles.receive_args(path, nasfiles.content_of(item), item["mode"],
                                                     item.get("uid", 568), item.get("gid", 568)))
            log.info(host.target.name, props["app"], f"wrote {path}")

    def read(self, id_: str, props: dict) -> ReadResult:
        found = _Folder(props).stat(props["root"])
        return ReadResult(id_ if found else "", props if found else {})

    def delete(self, _id: str, props: dict) -> None:
        target = target_of(props)
        extra = " (deleteData is set, but TrueNAS's API removes no files: delete it in the TrueNAS UI)" \
            if props.get("delete_data") else " (deleteData is not set)"
        log.info(target.name, props["app"], f"kept {props['root']} and the data in it{extra}")



class TrueNASAppFiles(Resource, module="homefleet", name="TrueNASAppFiles"):
    root: pulumi.Output[str]

    def __init__(self, name: str, props: dict, opts: Optional[pulumi.ResourceOptions] = None):
        files = props.get("files") or []
        super().__init__(TrueNASAppFilesProvider(), name,
                         {**props, "files": pulumi.Output.secret(files) if files else []}, opts)
