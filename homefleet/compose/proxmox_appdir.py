"""The app's folder on a Proxmox host (`<appRoot>/<app>/`): relative bind mounts, files shipped beside the
compose file, and named volumes shared by several services (issue 14 items 2 and 3).

- `./data:/data` (a folder that is not in the repo) -> `<appRoot>/<app>/data`, created empty, owned by
  the user the service runs as inside the unprivileged CT (host uid 100000 + the `user:` uid, else
  100000 = the CT's root), bind-mounted.
- `./conf.d:/etc/nginx/conf.d` (a folder in the repo) -> the same, and its files are uploaded.
- `./nginx.conf:/etc/nginx/nginx.conf:ro` (a file in the repo) -> uploaded to `<appRoot>/<app>/nginx.conf`
  and written into the CT with `pct push` (PVE bind-mounts folders only: pve-container's
  `__mountpoint_mount` dies "directory '...' does not exist" for anything else); its content hash is
  an input of the CTs that mount it, so an edit shows in the preview and restarts only those.
- a named volume used by two or more services -> `<appRoot>/<app>/volumes/<name>`, bind-mounted into
  each (a storage volume belongs to one CT).

Nothing there is deleted unless the app sets `deleteData: true`.

The same collector serves TrueNAS (compose/truenas.py, `<appRoot>` defaulting to `/mnt/<pool>/apps`):
there the owner is the uid itself (no id map) and, without a numeric `user:`, 568 (`apps`, the user
TrueNAS apps run as): `AppDir(..., owner=TRUENAS_OWNER)`.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
from pathlib import Path
from typing import Optional

from .files import within

UNPRIVILEGED_BASE = 100000           # PVE's default id map for unprivileged CTs (root -> 100000)
MAX_FILE_BYTES = 1024 * 1024
MAX_FILES = 200
_SAFE_REL = re.compile(r"^[A-Za-z0-9._+@-]+(/[A-Za-z0-9._+@-]+)*$")


def uid_of(service) -> int:
    """The uid inside the CT the service's files must belong to: a numeric `user:`, else root (a named user
    is resolved from the image once it is read: `user_of`, users.resolve_dirs)."""
    user = (service.user or "").split(":")[0]
    return int(user) if user.isdigit() else 0


def user_of(service) -> "str | None":
    """The user name of `user: name[:group]`, or None (numeric, root, none)."""
    user = (service.user or "").split(":")[0]
    return user if user and not user.isdigit() and user != "root" else None


class Owner:
    """Which host uid a service's folders belong to: `base` + the `user:` uid (numeric), else `default`;
    `by_name`: a named user is looked up in the image later (Proxmox) rather than taking the default."""

    def __init__(self, base: int, default: int, by_name: bool, host_word: str):
        self.base, self.default, self.by_name, self.host_word = base, default, by_name, host_word

    def uid(self, service) -> int:
        user = (service.user or "").split(":")[0]
        return self.base + (int(user) if user.isdigit() else 0 if user == "root" or self.by_name else self.default)


PROXMOX_OWNER = Owner(UNPRIVILEGED_BASE, 0, True, "the Proxmox host")
TRUENAS_APPS_UID = 568                # TrueNAS's `apps` user and group, which apps run as by default
TRUENAS_OWNER = Owner(0, TRUENAS_APPS_UID, False, "the NAS")


class AppDir:
    """Collects what the app's folder must hold; the converter reports problems through `fail`."""

    def __init__(self, app_root: Optional[str], app: str, compose_dir: Path, boundary, fail,
                 owner: Owner = PROXMOX_OWNER, root_fix: Optional[str] = None):
        self.root = f"{app_root.rstrip('/')}/{app}" if app_root else None
        self.owner = owner
        self.root_fix = root_fix
        self.compose_dir = compose_dir
        self.boundary = boundary
        self.fail = fail
        self.dirs: dict = {}    # rel -> host uid
        self.named: dict = {}   # rel -> (user name, image): owned by that user of the image once it is read
        self.files: dict = {}   # rel -> (bytes, sha256, mode)
        self.host_key = ""

    def _need_root(self, at: str) -> bool:
        if self.root is None:
            self.fail(at, "needs a folder for the app on the host, and the host has no appRoot",
                      self.root_fix or f"Set appRoot: /tank/apps (a folder on the host's data storage) on "
                      f"{self.host_key} (docs/compose.md)")
            return False
        return True

    def shared_volume(self, at: str, name: str, service) -> Optional[str]:
        if not self._need_root(at):
            return None
        rel = f"volumes/{name}"
        self._own(rel, service)
        return f"{self.root}/{rel}"

    def relative_bind(self, at: str, source: str, service) -> tuple:
        """-> (host path or None, 'dir' | 'file')."""
        if source.startswith("~"):
            self.fail(at, f"the host path {source!r} is in a home folder, which means nothing on {self.owner.host_word}",
                      "Write a path relative to the compose file (./data) or an absolute host path")
            return None, "dir"
        rel = posixpath.normpath(source)
        if rel in (".", "") or rel.startswith("../") or rel == ".." or not _SAFE_REL.match(rel):
            self.fail(at, f"the relative host path {source!r} must name a folder or file below the compose file's "
                      "folder, in letters, digits and ._+@-", "Write e.g. ./data")
            return None, "dir"
        local, refused = within(self.boundary, self.compose_dir, rel)
        if refused:
            self.fail(at, *refused)
            return None, "dir"
        if not self._need_root(at):
            return None, "dir"
        host = f"{self.root}/{rel}"
        if local.is_file():
            self._upload(at, rel, local)
            return host, "file"
        self._own(rel, service)
        if local.is_dir():
            for path in sorted(local.rglob("*")):
                if path.is_file():
                    self._upload(at, str(path.relative_to(self.compose_dir)).replace("\\", "/"), path)
                elif path.is_dir():
                    self._own(str(path.relative_to(self.compose_dir)), service)
        return host, "dir"

    def copy(self, at: str, source: str, rel: str, service) -> Optional[str]:
        """A file beside the compose file, uploaded under another name (`rel`, e.g. secrets/<service>/<name>)
        in a folder the service's user owns -> its host path, or None (reported)."""
        name = posixpath.normpath(source)
        if source.startswith(("/", "~")) or name.startswith("../") or name == ".." or not _SAFE_REL.match(name):
            self.fail(at, f"the file {source!r} must be beside the compose file (a relative path below its folder, in "
                      "letters, digits and ._+@-): homefleet uploads it from there",
                      "Put the file beside the compose file and write file: ./" + posixpath.basename(source))
            return None
        local, refused = within(self.boundary, self.compose_dir, name)
        if refused:
            self.fail(at, *refused)
            return None
        if not local.is_file():
            self.fail(at, f"file {source!r} not found next to the compose file", "Create it or fix the path")
            return None
        if not self._need_root(at):
            return None
        self._own(posixpath.dirname(rel), service)
        self._upload(at, rel, local, checked=True)
        return f"{self.root}/{rel}" if rel in self.files else None

    def _own(self, rel: str, service) -> None:
        """The folder belongs to the first service that names it: its numeric user, or its named user."""
        if rel in self.dirs:
            return
        self.dirs[rel] = self.owner.uid(service)
        if user_of(service) and self.owner.by_name:
            self.named[rel] = (user_of(service), service.image)

    def _upload(self, at: str, rel: str, local: Path, checked: bool = False) -> None:
        if rel in self.files:
            return
        _, refused = (None, None) if checked else within(self.boundary, self.compose_dir, rel)
        if refused or not _SAFE_REL.match(rel):
            self.fail(at, f"{rel!r} cannot be uploaded: " + (refused[0] if refused else "its name holds characters "
                      "other than letters, digits and ._+@-"), "Rename it, or keep it inside the project folder")
            return
        data = local.read_bytes()
        if len(data) > MAX_FILE_BYTES or len(self.files) >= MAX_FILES:
            self.fail(at, f"{rel!r} is too large to upload (at most {MAX_FILES} files of 1 MiB each per app)",
                      "Put large files on the host yourself and bind-mount them with an absolute path")
            return
        mode = "0755" if local.stat().st_mode & 0o111 else "0644"
        self.files[rel] = (data, hashlib.sha256(data).hexdigest(), mode)

    def sha256(self, rel_host_path: str) -> str:
        rel = rel_host_path[len(self.root) + 1:]
        return self.files[rel][1]

    def plan(self) -> Optional[dict]:
        """The AppFiles inputs (file contents base64; the caller makes them secret), or None."""
        if self.root is None or not (self.dirs or self.files):
            return None
        return {
            "root": self.root,
            "dirs": [{"path": rel, "uid": uid, "gid": uid,
                      **({"user": self.named[rel][0], "image": self.named[rel][1]} if rel in self.named else {})}
                     for rel, uid in sorted(self.dirs.items())],
            "files": [{"path": rel, "sha256": sha, "mode": mode, "content": base64.b64encode(data).decode()}
                      for rel, (data, sha, mode) in sorted(self.files.items())],
        }
