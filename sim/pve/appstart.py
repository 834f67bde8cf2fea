"""What starting an application container does to its volumes, and its simulated entrypoint.

1. Mounting (pve-container `src/lxc-pve-prestart-hook` -> `LXC.pm` `mountpoint_insert_staged`):
   with `keepattrs` the mounted volume's top takes the uid, gid and mode of the directory it is
   mounted over (the image's directory at that path, or one PVE creates, root's 0755, in
   `walk_tree_nofollow`). pve-container 6.0.19 to 6.1.1 did this for every volume mount point
   (commit 0db5595 "inherit attributes if directory already exists"); 6.1.2 made it the opt-in
   `keepattrs` flag (commit 6dccbc4), default off. The rootfs never inherits (6.1.0, #7267).
2. The entrypoint runs as `lxc.init.uid`/`gid`/`groups` (the image's `User`, 6.1.0+). A
   simulated image says in `/etc/homefleet-sim/entrypoint.json` (written by sim/images.py)
   what its entrypoint does at start: directories it chowns when it starts as root
   (`prepare`), directories its process writes (`writes`), directories it initialises and
   therefore needs empty (`empty`, e.g. postgres `initdb`), and ports it binds (`listen`; an
   unprivileged CT keeps net.ipv4.ip_unprivileged_port_start at 1024, Docker sets it to 0).
   When the entrypoint cannot do that, it exits: the CT stops and the reason is appended to
   `/run/pve/ct-<vmid>.stderr` (sim/pve/ctlog.py). `pct start` itself succeeds. A `writes`
   item with `file` writes that file into the directory (a migration's marker); `exit_after`
   (`{seconds, status, error}`) makes an entrypoint that ran fine exit that long after the
   start (sim/pve/runstate.py `schedule_exit`: every status read sees it stopped from then on).

Ids are the CT's (volattrs.py). Bind mounts are the user's folders: the simulator does not
track their owners and treats them as writable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from . import ctlog, pveversion, runstate, storage, volattrs
from . import paths
from .ct_ops import mount_points
from .errors import PveError

BEHAVIOUR_FILE = "/etc/homefleet-sim/entrypoint.json"
WROTE = ".homefleet-sim-wrote"
ANY = (0, 0, 0o777)


class AppExit(Exception):
    """The simulated entrypoint gave up; the message is its last log line."""


def _norm(path: str) -> str:
    return str(PurePosixPath("/") / os.path.normpath("/" + path).lstrip("/"))


class View:
    """The CT's file tree: the rootfs with the mount points over it (parents first)."""

    def __init__(self, conf, cfg: dict):
        self.mounts: list[tuple[str, str | None, Path]] = []   # (ct path, volid or None, host dir)
        self.mp_opts: dict[str, dict] = {}
        for key, mp in mount_points(conf.main.values):
            ct_path = _norm(mp["mp"])
            if mp["type"] == "volume":
                try:
                    host = storage.volume_path(mp["volume"], cfg)
                except PveError:
                    continue
                self.mounts.append((ct_path, mp["volume"], host))
            else:
                self.mounts.append((ct_path, None, paths.host_path(mp["volume"])))
            self.mp_opts[ct_path] = {"key": key, **mp}
        self.mounts.sort(key=lambda m: (m[0].count("/") if m[0] != "/" else 0, m[0]))

    def _find(self, path: str, upto: int | None = None) -> tuple[str, str | None, Path, str]:
        path = _norm(path)
        best = None
        for ct_path, volid, host in self.mounts[:upto]:
            if path == ct_path or ct_path == "/" or path.startswith(ct_path + "/"):
                if best is None or len(ct_path) >= len(best[0]):
                    best = (ct_path, volid, host)
        if best is None:
            raise AppExit(f"no root file system mounted for {path}")
        rel = path[len(best[0]):].strip("/") if best[0] != "/" else path.strip("/")
        return best[0], best[1], best[2], rel

    def host(self, path: str, upto: int | None = None) -> Path:
        _m, _v, host, rel = self._find(path, upto)
        return host / rel if rel else host

    def attrs(self, path: str, upto: int | None = None) -> tuple[int, int, int]:
        _m, volid, _h, rel = self._find(path, upto)
        return volattrs.get(volid, rel) if volid else ANY

    def set_attrs(self, path: str, attrs: tuple[int, int, int]) -> None:
        _m, volid, _h, rel = self._find(path)
        if volid:
            volattrs.set_attrs(volid, rel, attrs)

    def mount_volumes(self, version: tuple[int, ...]) -> None:
        """The prestart hook: each volume's top inherits the directory under it when asked."""
        auto = (6, 0, 19) <= version < (6, 1, 2)
        for index, (ct_path, volid, _host) in enumerate(self.mounts):
            if ct_path == "/" or volid is None:
                continue
            keep = auto or (version >= (6, 1, 2) and self.mp_opts[ct_path].get("keepattrs") == "1")
            if not keep:
                continue
            under = self.host(ct_path, upto=index)
            attrs = self.attrs(ct_path, upto=index) if under.is_dir() else volattrs.ROOT_DIR
            volattrs.set_attrs(volid, "", attrs)


def may_write(attrs: tuple[int, int, int], uid: int, gids: set[int]) -> bool:
    owner, group, mode = attrs
    if uid == 0:
        return owner != 65534          # CT root may not write what host root owns
    if uid == owner:
        return bool(mode & 0o200)
    if group in gids:
        return bool(mode & 0o020)
    return bool(mode & 0o002)


def _listing(host: Path) -> list[str]:
    try:
        return sorted(os.listdir(host))
    except OSError:
        return []


class Entrypoint:
    def __init__(self, view: View, behaviour: dict, uid: int, gid: int, groups: set[int], env: dict):
        self.view, self.spec, self.env = view, behaviour, env
        self.uid, self.gid, self.groups = uid, gid, groups | {gid}

    def path_of(self, item: dict) -> str:
        value = self.env.get(item.get("env") or "") or item["path"]
        return _norm(value)

    def writer(self, item: dict) -> tuple[int, set[int]]:
        ids = item.get("as")
        if ids is None or self.uid != 0:      # `as`: the user a root entrypoint drops to
            return self.uid, self.groups
        return ids[0], {ids[1]}

    def _mkdirs(self, path: str, uid: int, gids: set[int], mode: int) -> None:
        missing = []
        cur = path
        while not self.view.host(cur).is_dir():
            missing.append(cur)
            cur = str(PurePosixPath(cur).parent)
        for sub in reversed(missing):
            if not may_write(self.view.attrs(str(PurePosixPath(sub).parent)), uid, gids):
                raise AppExit(f"mkdir: can't create directory '{sub}': Permission denied")
            self.view.host(sub).mkdir()
            self.view.set_attrs(sub, (uid, min(gids) if gids else uid, mode))

    def run(self) -> None:
        if self.uid == 0:
            for item in self.spec.get("prepare", []):
                path = self.path_of(item)
                self._mkdirs(path, 0, {0}, 0o755)
                if item.get("only_if_empty") and _listing(self.view.host(path)):
                    continue
                _o, _g, mode = self.view.attrs(path)
                self.view.set_attrs(path, (item["chown"][0], item["chown"][1], item.get("mode", mode)))
        for item in self.spec.get("empty", []):
            path = self.path_of(item)
            uid, gids = self.writer(item)
            host = self.view.host(path)
            entries = [e for e in _listing(host) if e != WROTE]
            if entries and item["marker"] not in entries:
                raise AppExit(item.get("error", "directory '{path}' exists but is not empty").format(
                    path=path) + f" (it holds {', '.join(entries[:3])})")
            self._write(path, uid, gids, item, marker=item["marker"])
        for item in self.spec.get("writes", []):
            uid, gids = self.writer(item)
            self._write(self.path_of(item), uid, gids, item)
        for item in self.spec.get("listen", []):
            uid, _gids = self.writer(item)
            port = int(self.env.get(item.get("env") or "") or item["port"])
            if port < 1024 and uid != 0:
                raise AppExit(f"listen tcp :{port}: bind: permission denied (uid {uid})")

    def _write(self, path: str, uid: int, gids: set[int], item: dict, marker: str | None = None) -> None:
        try:
            self._mkdirs(path, uid, gids, 0o700 if marker else 0o755)
        except AppExit:
            raise AppExit(item.get("error", "{path}: Permission denied").format(path=path))
        if not may_write(self.view.attrs(path), uid, gids):
            raise AppExit(item.get("error", "{path}: Permission denied").format(path=path))
        host = self.view.host(path)
        if marker:
            (host / marker).write_text("written by the simulated entrypoint\n")
        if item.get("file"):
            (host / item["file"]).write_text(f"written by {self.env.get('APP_VERSION', 'the app')}\n")
        (host / WROTE).write_text(f"uid {uid}\n")


def _ids(conf) -> tuple[int, int, set[int]]:
    lxc = dict(conf.main.lxc)
    uid = int(lxc.get("lxc.init.uid", 0))
    gid = int(lxc.get("lxc.init.gid", 0))
    groups = {int(g) for g in (lxc.get("lxc.init.groups") or "").split(",") if g.strip()}
    return uid, gid, groups


def log_path(vmid: int) -> Path:
    return ctlog.log_path(vmid)


def read_behaviour(conf) -> dict | None:
    """The image's entrypoint.json as the CT sees it, or None (no entrypoint, no file)."""
    if not conf.get("entrypoint"):
        return None
    try:
        view = View(conf, storage.load_config())
        return json.loads(view.host(BEHAVIOUR_FILE).read_text())
    except (OSError, ValueError, AppExit):
        return None


def start(vmid: int, conf) -> None:
    """After the CT is marked running: mount attributes, then the entrypoint (if the image says)."""
    view = View(conf, storage.load_config())
    view.mount_volumes(pveversion.container_version())
    if not conf.get("entrypoint"):
        return
    try:
        behaviour = json.loads(view.host(BEHAVIOUR_FILE).read_text())
    except (OSError, ValueError, AppExit):
        return
    env = dict(e.split("=", 1) for e in (conf.get("env") or "").split("\0") if "=" in e)
    uid, gid, groups = _ids(conf)
    try:
        Entrypoint(view, behaviour, uid, gid, groups, env).run()
    except AppExit as exc:
        runstate.mark_stopped(vmid)
        ctlog.append(vmid, f"lxc-start {vmid} ERROR: init (entrypoint, uid {uid}) exited with status 1: {exc}")
        return
    crash = behaviour.get("exit_after")
    if crash:
        runstate.schedule_exit(vmid, crash.get("seconds", 0), (
            f"lxc-start {vmid} ERROR: init (entrypoint, uid {uid}) exited with status "
            f"{crash.get('status', 1)}: {crash.get('error', 'exited')}"))
