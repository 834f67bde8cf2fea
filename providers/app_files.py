"""AppFiles: a compose app's folder on a Proxmox host, `<appRoot>/<app>/` (see homefleet/compose/proxmox_appdir.py).

Inputs: host, root, dirs [{path, uid, gid}] (relative), files [{path, sha256, mode, content (base64)}]
(a secret output: a config file may hold a password), delete_data.
create/update: the folders (new ones chowned for the unprivileged CT), then each new or changed file.
read: the folder is still there. delete: the uploaded files; the folder and everything in it only
with delete_data (it holds the users' data: relative bind mounts, shared volumes).
"""

import base64
import re
from typing import Optional

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from . import log
from .base import HomefleetProvider, diff_changes, inputs_moved, same_host, target_of
from .errors import HostCommandError
from .hosts import appdir
from .transport import run

_ROOT = re.compile(r"^/[A-Za-z0-9._+@/-]+$")
_REL = re.compile(r"^[A-Za-z0-9._+@-]+(/[A-Za-z0-9._+@-]+)*$")
_MODE = re.compile(r"^0[0-7]{3}$")


def _bad_rel(path: str) -> bool:
    return not _REL.match(path or "") or any(part in (".", "..") for part in path.split("/"))


class AppFilesProvider(HomefleetProvider):
    def check(self, olds: dict, news: dict) -> CheckResult:
        failures = []
        root = news.get("root") or ""
        if not _ROOT.match(root) or any(part in (".", "..") for part in root.split("/")):
            failures.append(CheckFailure("root", "must be an absolute folder path without '..'"))
        dirs = news.get("dirs")
        for item in dirs if isinstance(dirs, list) else []:  # unknown in a preview before the image is read
            if _bad_rel(item.get("path")) or not isinstance(item.get("uid"), (int, float)):
                failures.append(CheckFailure("dirs", "each folder is a relative path and a numeric uid/gid"))
        for item in news.get("files") or []:
            if _bad_rel(item.get("path")) or not _MODE.match(str(item.get("mode", ""))):
                failures.append(CheckFailure("files", "each file is a relative path and a mode like 0644"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict, news: dict) -> DiffResult:
        return folder_diff(olds, news, ("dirs", "delete_data"))

    def create(self, props: dict) -> CreateResult:
        self._apply(props, {})
        return CreateResult(f"{target_of(props).name}:{props['root']}", _outputs(props))

    def update(self, _id: str, olds: dict, news: dict) -> UpdateResult:
        self._apply(news, file_digests(olds))
        return UpdateResult(_outputs(news))

    def _apply(self, props: dict, had: dict) -> None:
        target = target_of(props)
        result = run(target, appdir.prepare_script(props["root"], props.get("dirs") or []))
        if not result.ok:
            raise HostCommandError(target.name, f"preparing {props['root']}", result.stderr)
        for item in props.get("files") or []:
            if had.get(item["path"]) == item["sha256"]:
                continue
            data = base64.b64decode(item["content"])
            result = run(target, appdir.write_script(props["root"], item["path"], item["mode"]), stdin=data)
            if not result.ok:
                raise HostCommandError(target.name, f"writing {props['root']}/{item['path']}", result.stderr)
            log.info(target.name, props["app"], f"wrote {props['root']}/{item['path']}")

    def read(self, id_: str, props: dict) -> ReadResult:
        result = run(target_of(props), appdir.stat_argv(props["root"]))
        return ReadResult(id_ if result.ok else "", props if result.ok else {})

    def delete(self, _id: str, props: dict) -> None:
        target = target_of(props)
        files = [item["path"] for item in props.get("files") or []]
        result = run(target, appdir.remove_script(props["root"], files, bool(props.get("delete_data"))))
        if not result.ok:
            raise HostCommandError(target.name, f"removing {props['root']}", result.stderr)
        if not props.get("delete_data"):
            log.info(target.name, props["app"], f"kept {props['root']} and the data in it (deleteData is not set)")


def folder_diff(olds: dict, news: dict, keys: tuple) -> DiffResult:
    """An app folder (Proxmox or TrueNAS): another host or root replaces it; `keys` and the
    files' content hashes update it in place."""
    replaces = []
    if not same_host(olds.get("host", {}), news.get("host", {})) or olds.get("root") != news.get("root"):
        replaces.append("root")
    changed = [k for k in keys if olds.get(k) != news.get(k)]
    if file_digests(olds) != file_digests(news):
        changed.append("files")
    return DiffResult(changes=diff_changes(changed, replaces, inputs_moved(olds, news, set())), replaces=replaces,
                      delete_before_replace=False)


def file_digests(props: dict) -> dict:
    """{path: sha256} of the uploaded files ({} while the list is not known, in a preview)."""
    files = props.get("files")
    return {item.get("path"): item.get("sha256") for item in files if isinstance(item, dict)} \
        if isinstance(files, list) else {}


def _outputs(props: dict) -> dict:
    return dict(props)


class AppFiles(Resource, module="homefleet", name="AppFiles"):
    root: pulumi.Output[str]

    def __init__(self, name: str, props: dict, opts: Optional[pulumi.ResourceOptions] = None):
        files = props.get("files") or []
        super().__init__(AppFilesProvider(), name, {**props, "files": pulumi.Output.secret(files) if files else []},
                         opts)
