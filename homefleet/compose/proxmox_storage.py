"""`volumes:` of a service on Proxmox: storage volumes, bind mounts, and what cannot be mounted."""

from __future__ import annotations

import re
from typing import Optional

from ..image_needs import empty_dir_warning
from ..sizes import to_gib
from . import host_access
from .model import Service
from .proxmox_keys import WARN

DEFAULT_VOLUME_GIB = 8
VOLUME_X = {"size", "storage", "backup"}


class StorageRules:
    # ---- storage

    def _volumes(self, service: Service, ignore: set) -> tuple:
        """-> (storage volumes, bind mounts, files pushed into the CT)."""
        volumes, mounts, files = [], [], []
        for mount in service.volumes:
            at = mount.where
            target = mount.target.rstrip("/") or "/"
            if not safe_path(target):
                self.fail(at, f"the container path {mount.target!r} cannot hold ',', '=', '..' or spaces on Proxmox",
                          "Choose a plain absolute path")
                continue
            if mount.type == "tmpfs":
                self.warn(at, WARN["tmpfs"].replace("{value}", target))
                continue
            source = mount.source
            if mount.type == "volume" and source is not None:
                declared = self.compose.volumes.get(source) or {}
                bind = driver_bind(declared)
                if bind is None and not self._volume_ok(source, declared):
                    continue
                if bind is not None:
                    mount_type, source = "bind", bind
                elif source in self.shared:
                    host = self.app_dir.shared_volume(f"volumes.{source}", source, service)
                    if host is not None:
                        mounts.append({"source": host, "path": target, "read_only": bool(mount.read_only)})
                    continue
                else:
                    x = declared.get("x-homefleet") or {}
                    volumes.append(self._storage_volume(f"volumes.{source}", target, x, mount))
                    continue
            elif mount.type == "volume":  # anonymous
                volumes.append(self._storage_volume(at, target, {}, mount))
                continue
            else:
                mount_type = "bind"
            if mount_type == "bind":
                if not source or not source.startswith("/"):
                    host, kind = self.app_dir.relative_bind(at, source or "", service)
                    if host is None:
                        continue
                    if kind == "file":
                        files.append({"path": target, "source": host, "sha256": self.app_dir.sha256(host)})
                        continue
                    source = host
                clean = source.rstrip("/") or "/"
                if clean in host_access.CLOCK_FILES and mount.read_only:
                    self.warn(at, "is left out: PVE bind-mounts folders only, and an app container keeps the host's "
                              "clock; its time zone comes from TZ", "Set TZ in environment: (e.g. TZ: Europe/Berlin)")
                    continue
                if clean in host_access.DOCKER_SOCKETS:
                    self.fail(at, f"bind-mounts Docker's API socket {clean}; a Proxmox host runs no Docker daemon "
                              "(each service is its own CT), so there is no socket to give the app",
                              "Remove it; an app that manages Docker containers needs a Docker host (a VM, or a "
                              "TrueNAS host)")
                    continue
                if not safe_path(clean):
                    self.fail(at, f"the host path {source!r} cannot hold ',', '=', '..' or spaces on Proxmox",
                              "Choose a plain absolute path")
                    continue
                if isinstance(mount.options.get("bind"), dict) and mount.options["bind"].get("propagation"):
                    self.warn(at, "bind propagation is ignored on Proxmox")
                mounts.append({"source": clean, "path": target, "read_only": bool(mount.read_only)})
        found = empty_dir_warning(service.image, service.environment, [v["path"] for v in volumes])
        if found:
            self.warn(f"{service.where}.volumes", f"{found[0]} {found[1]}", found[2])
        return volumes, mounts, files

    def _volume_ok(self, name: str, declared: dict) -> bool:
        where = f"volumes.{name}"
        if declared.get("external"):
            self.fail(where, "is an external volume (created outside this file); Proxmox has no Docker volumes",
                      "Remove external: so homefleet creates the volume, or bind-mount an absolute host path")
            return False
        if declared.get("driver") not in (None, "local"):
            self.fail(f"{where}.driver", f"the volume driver {declared['driver']!r} is not available on Proxmox",
                      "Remove driver:, or bind-mount a host path where the host mounts that storage")
            return False
        if declared.get("driver_opts"):
            self.fail(f"{where}.driver_opts",
                      "only {type: none, o: bind, device: /absolute/path} is supported on Proxmox",
                      "Use that form for a host folder, or remove driver_opts:")
            return False
        return True

    def _storage_volume(self, where: str, target: str, x, mount) -> dict:
        size = DEFAULT_VOLUME_GIB
        if not isinstance(x, dict):
            self.fail(f"{where}.x-homefleet", "must be a mapping", "Write e.g. x-homefleet: {size: 20}")
            x = {}
        for key in x:
            if key not in VOLUME_X:
                self.fail(f"{where}.x-homefleet.{key}", "unknown key", "allowed: " + ", ".join(sorted(VOLUME_X)))
        if x.get("size") is not None:
            try:
                size = to_gib(x["size"])
                if size < 1:
                    raise ValueError
            except ValueError:
                self.fail(f"{where}.x-homefleet.size", f"must be a whole number of GiB ≥ 1 (got {x['size']!r})",
                          "Write e.g. size: 20")
        if mount.read_only:
            self.warn(mount.where, "is mounted read-write: homefleet mounts storage volumes read-write on Proxmox")
        volume = {"path": target, "size": size}
        if x.get("storage"):
            volume["storage"] = str(x["storage"])
        if x.get("backup") is not None:
            volume["backup"] = bool(x["backup"])
        return volume


def driver_bind(declared: dict) -> Optional[str]:
    """The host path of a `driver_opts: {type: none, o: bind, device: /path}` volume."""
    opts = declared.get("driver_opts") or {}
    bind = opts.get("type") == "none" and "bind" in str(opts.get("o", "")).split(",")
    if declared.get("driver") in (None, "local") and bind:
        device = opts.get("device")
        return str(device) if device else None
    return None


def safe_path(path: str) -> bool:
    return path.startswith("/") and not re.search(r"[,=\s\x00-\x1f]", path) and ".." not in path.split("/")
