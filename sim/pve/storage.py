"""Storages from `/etc/pve/storage.cfg`, and the volumes on them (directories in the sim).

* `dir` storages keep files under their `path` (prefixed by SIM_ROOT); container disks are
  `images/<vmid>/vm-<vmid>-disk-N.raw`, which in the sim is a directory.
* `zfspool` storages keep `subvol-<vmid>-disk-N` datasets, which in the sim are directories
  under `$SIM_STATE/sim/zfs/<pool>/`.
Volume sizes (the quota PVE would set) are recorded in `$SIM_STATE/sim/volume-sizes.json`.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import paths, volattrs
from .errors import PveError

DEFAULT_STORAGE_CFG = """dir: local
\tpath /var/lib/vz
\tcontent vztmpl,iso,backup,rootdir,images

zfspool: local-zfs
\tpool rpool/data
\tsparse
\tcontent rootdir,images
"""

VOLID_RE = re.compile(r"(?i)([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)", re.S)
VZTMPL_RE = re.compile(r"[^/]+\.(tar|tar\.gz|tar\.xz|tar\.zst|tar\.bz2)")
VZTMPL_FORMAT = {"tar": "tar", "tar.gz": "tgz", "tar.xz": "txz", "tar.zst": "tzst",
                 "tar.bz2": "tbz2"}
DISK_RE = re.compile(r"(vm|base|subvol|basevol)-(\d+)-disk-(\d+)(\.(raw|qcow2|vmdk|subvol))?")
# pve-storage Storage.pm $BACKUP_EXT_RE_2 (Plugin.pm COMPRESSOR_RE: gz lzo zst bz2)
BACKUP_RE = re.compile(r"[^/]+\.(tgz|(?:tar|vma)(?:\.(?:gz|lzo|zst|bz2))?)")
# Storage.pm archive_info: the standard name vzdump gives an archive
STD_BACKUP_RE = re.compile(r"vzdump-(lxc|openvz|qemu)-([1-9][0-9]{2,8})-(\d{4})_(\d{2})_(\d{2})-(\d{2})_(\d{2})_(\d{2})\.(.+)")
SNAPSHOT_TYPES = {"zfspool", "zfs", "lvmthin", "rbd", "btrfs", "cephfs"}


@dataclass
class Storage:
    storeid: str
    type: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def content(self) -> set[str]:
        return {c for c in re.split(r"[,\s]+", self.options.get("content", "")) if c}

    @property
    def disabled(self) -> bool:
        return self.options.get("disable", "0") not in ("0", "")

    @property
    def is_dir(self) -> bool:
        return self.type in ("dir", "nfs", "cifs", "btrfs", "cephfs")

    def base_path(self) -> Path:
        """The storage's folder on this (simulated) host."""
        if self.type == "zfspool":
            return paths.zfs_root() / self.options.get("pool", "rpool/data")
        return paths.host_path(self.options.get("path", f"/mnt/pve/{self.storeid}"))

    # -- volume names --------------------------------------------------------------------

    def parse_volname(self, volname: str) -> tuple[str, str, int | None, str]:
        """-> (vtype, name, owner vmid, format)"""
        if self.type == "zfspool":
            m = re.fullmatch(r"(((base|basevol)-(\d+)-\S+)/)?((base|basevol|vm|subvol)-(\d+)-\S+)",
                             volname)
            if not m:
                raise PveError(f"unable to parse zfs volume name '{volname}'")
            fmt = "subvol" if m.group(6) in ("subvol", "basevol") else "raw"
            return "images", m.group(5), int(m.group(7)), fmt
        if self.is_dir:
            if m := re.fullmatch(r"(\d+)/(\S+)", volname):
                name = m.group(2)
                nm = re.fullmatch(r"((?:base-)?[^/\s]+\.(raw|qcow2|vmdk|subvol))", name)
                if not nm:
                    raise PveError(f"unable to parse volume filename '{name}'")
                return "images", name, int(m.group(1)), nm.group(2)
            if m := re.fullmatch(r"vztmpl/(.+)", volname):
                if VZTMPL_RE.fullmatch(m.group(1)):
                    return "vztmpl", m.group(1), None, "raw"
            if m := re.fullmatch(r"iso/([^/]+\.(?:iso|img))", volname, re.I):
                return "iso", m.group(1), None, "raw"
            if (m := re.fullmatch(r"backup/([^/]+)", volname)) and BACKUP_RE.fullmatch(m.group(1)):
                owner = re.match(r"vzdump-(?:openvz|lxc|qemu)-(\d+)-.+", m.group(1))
                return "backup", m.group(1), int(owner.group(1)) if owner else None, "raw"
            if m := re.fullmatch(r"snippets/([^/]+)", volname):
                return "snippets", m.group(1), None, "raw"
            raise PveError(f"unable to parse directory volume name '{volname}'")
        raise PveError(f"storage type '{self.type}' is not supported by the simulator")

    def volume_path(self, volname: str) -> Path:
        vtype, name, owner, _fmt = self.parse_volname(volname)
        base = self.base_path()
        if self.type == "zfspool":
            return base / name
        sub = {"images": f"images/{owner}", "vztmpl": "template/cache", "iso": "template/iso",
               "backup": "dump", "snippets": "snippets"}[vtype]
        return base / sub / name

    # -- disks ---------------------------------------------------------------------------

    def _disk_names(self, vmid: int) -> list[str]:
        if self.type == "zfspool":
            folder = self.base_path()
        else:
            folder = self.base_path() / "images" / str(vmid)
        if not folder.is_dir():
            return []
        return [p.name for p in folder.iterdir()]

    def find_free_diskname(self, vmid: int, fmt: str) -> str:
        used = set()
        for name in self._disk_names(vmid):
            m = DISK_RE.fullmatch(name)
            if m and int(m.group(2)) == vmid:
                used.add(int(m.group(3)))
        n = 0
        while n in used:
            n += 1
        if self.type == "zfspool":
            return f"subvol-{vmid}-disk-{n}"
        return f"vm-{vmid}-disk-{n}.{fmt}"

    def alloc_disk(self, vmid: int, size: int) -> tuple[str, str]:
        """Allocate a container volume; -> (volid, message to print or '')."""
        if self.type == "zfspool":
            name = self.find_free_diskname(vmid, "subvol")
            path = self.base_path() / name
            path.mkdir(parents=True)
            volid = f"{self.storeid}:{name}"
            msg = ""
        elif self.is_dir:
            name = self.find_free_diskname(vmid, "raw")
            path = self.base_path() / "images" / str(vmid) / name
            path.mkdir(parents=True)
            volid = f"{self.storeid}:{vmid}/{name}"
            msg = (f"Formatting '{path}', fmt=raw size={size} preallocation=off")
            make_ext4_top(volid, path)
        else:
            raise PveError(f"storage type '{self.type}' is not supported by the simulator")
        set_volume_size(volid, size)
        return volid, msg

    def rename_volume(self, volname: str, target_vmid: int) -> str:
        vtype, name, _owner, fmt = self.parse_volname(volname)
        if vtype != "images":
            raise PveError(f"rename_volume: only images can be renamed")
        old_path = self.volume_path(volname)
        new_name = self.find_free_diskname(target_vmid, fmt)
        if self.type == "zfspool":
            new_volname = new_name
        else:
            new_volname = f"{target_vmid}/{new_name}"
        new_path = self.volume_path(new_volname)
        new_path.parent.mkdir(parents=True, exist_ok=True)
        os.rename(old_path, new_path)
        volattrs.rename(f"{self.storeid}:{volname}", f"{self.storeid}:{new_volname}")
        size = get_volume_size(f"{self.storeid}:{volname}")
        forget_volume_size(f"{self.storeid}:{volname}")
        if size is not None:
            set_volume_size(f"{self.storeid}:{new_volname}", size)
        return new_volname

    def free(self, volname: str) -> None:
        path = self.volume_path(volname)
        if self.parse_volname(volname)[0] == "backup" and path.with_name(path.name + ".protected").exists():
            # Plugin.pm free_image
            raise PveError(f"cannot remove protected volume '{volname}' on '{self.storeid}'")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            raise PveError(f"volume '{self.storeid}:{volname}' does not exist")
        forget_volume_size(f"{self.storeid}:{volname}")
        volattrs.forget(f"{self.storeid}:{volname}")

    def dump_dir(self) -> Path:
        """Plugin.pm get_subdir($scfg, 'backup'): `<path>/dump` (or `content-dirs`)."""
        if not self.is_dir:
            raise PveError("storage definition has no path")
        return self.base_path() / "dump"

    def supports_snapshot(self, volname: str) -> bool:
        """Plugin.pm volume_has_feature('snapshot'): ZFS, LVM-thin, RBD, btrfs volumes can;
        a raw file or subvol directory on a `dir` storage cannot (only qcow2 could)."""
        if self.type in SNAPSHOT_TYPES:
            return True
        return self.is_dir and volname.endswith(".qcow2")

    # -- listing ---------------------------------------------------------------------------

    def list_backups(self, vmid: int | None = None) -> list[dict]:
        """Plugin.pm $get_subdir_files for 'backup': archives in the dump dir, with `notes`
        (first line of `<archive>.notes`), `protected` (`<archive>.protected` exists), `ctime`
        (from the standard name), `subtype` and `vmid`."""
        res: list[dict] = []
        folder = self.dump_dir() if self.is_dir else None
        if folder is None or "backup" not in self.content or not folder.is_dir():
            return res
        for p in sorted(folder.iterdir()):
            m = BACKUP_RE.fullmatch(p.name)
            if not m or not p.is_file():
                continue
            if vmid is not None and not re.search(rf"\S+-{vmid}-\S+", p.name):
                continue
            info = {"volid": f"{self.storeid}:backup/{p.name}", "content": "backup", "format": m.group(1),
                    "size": p.stat().st_size}
            std = STD_BACKUP_RE.fullmatch(p.name)
            if std and std.group(9) == m.group(1):
                y, mo, d, h, mi, sec = (int(std.group(i)) for i in range(3, 9))
                info["ctime"] = int(time.mktime((y, mo, d, h, mi, sec, 0, 0, -1)))
            info["subtype"] = std.group(1) if std else "unknown"
            owner = re.search(rf"-([1-9][0-9]{{2,8}})-[^/]+\.{re.escape(m.group(1))}$", p.name)
            if vmid is not None or owner:
                info["vmid"] = vmid if vmid is not None else int(owner.group(1))
            notes = p.with_name(p.name + ".notes")
            if notes.is_file():
                info["notes"] = notes.read_text("utf-8", "replace").split("\n", 1)[0]
            if p.with_name(p.name + ".protected").exists():
                info["protected"] = 1
            info.setdefault("ctime", int(p.stat().st_ctime))
            res.append(info)
        return res

    def list_volumes(self) -> list[dict]:
        res: list[dict] = []
        base = self.base_path()
        res += self.list_backups()
        if self.is_dir:
            cache = base / "template" / "cache"
            if "vztmpl" in self.content and cache.is_dir():
                for p in sorted(cache.iterdir()):
                    m = VZTMPL_RE.fullmatch(p.name)
                    if m and p.is_file():
                        res.append({"volid": f"{self.storeid}:vztmpl/{p.name}", "content": "vztmpl",
                                    "format": VZTMPL_FORMAT[m.group(1)], "size": p.stat().st_size})
            images = base / "images"
            if self.content & {"images", "rootdir"} and images.is_dir():
                for vmdir in sorted(images.iterdir()):
                    if not vmdir.name.isdigit():
                        continue
                    for p in sorted(vmdir.iterdir()):
                        m = DISK_RE.fullmatch(p.name)
                        if not m:
                            continue
                        volid = f"{self.storeid}:{vmdir.name}/{p.name}"
                        res.append({"volid": volid, "content": "images", "format": m.group(5) or "raw",
                                    "size": get_volume_size(volid) or 0, "vmid": int(vmdir.name)})
        elif self.type == "zfspool" and base.is_dir():
            for p in sorted(base.iterdir()):
                m = DISK_RE.fullmatch(p.name)
                if not m:
                    continue
                volid = f"{self.storeid}:{p.name}"
                subvol = m.group(1) in ("subvol", "basevol")
                res.append({"volid": volid, "content": "rootdir" if subvol else "images",
                            "format": "subvol" if subvol else "raw",
                            "size": get_volume_size(volid) or 0, "vmid": int(m.group(2))})
        return res


def make_ext4_top(volid: str, path: Path) -> None:
    """What `mkfs.ext4 -E root_owner=...` leaves at the top of a new raw volume (pve-container
    `LXC.pm` `alloc_disk` formats every raw volume; only ZFS, and dir/btrfs at size 0, get a
    subvolume): the root directory owned by the CT's root, mode 0755 (the default record), and
    `lost+found`, mode 0700, owned by host root, which an unprivileged CT sees as nobody."""
    (path / "lost+found").mkdir(mode=0o700, exist_ok=True)
    volattrs.set_attrs(volid, "lost+found", (65534, 65534, 0o700))


# --- storage.cfg ------------------------------------------------------------------------------

def parse_storage_cfg(text: str) -> dict[str, Storage]:
    res: dict[str, Storage] = {}
    current: Storage | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if m := re.fullmatch(r"(\S+):\s*(\S+)\s*", line):
            current = Storage(m.group(2), m.group(1))
            res[current.storeid] = current
            continue
        if current is not None and line[:1] in (" ", "\t"):
            parts = line.strip().split(None, 1)
            current.options[parts[0]] = parts[1] if len(parts) > 1 else "1"
    return res


def load_config() -> dict[str, Storage]:
    path = paths.storage_cfg()
    text = path.read_text() if path.exists() else DEFAULT_STORAGE_CFG
    return parse_storage_cfg(text)


def get_storage(storeid: str, cfg: dict[str, Storage] | None = None) -> Storage:
    cfg = cfg if cfg is not None else load_config()
    if storeid not in cfg:
        raise PveError(f"storage '{storeid}' does not exist")
    return cfg[storeid]


def check_enabled(storeid: str, cfg: dict[str, Storage] | None = None) -> Storage:
    scfg = get_storage(storeid, cfg)
    if scfg.disabled:
        raise PveError(f"storage '{storeid}' is disabled")
    nodes = scfg.options.get("nodes")
    if nodes and paths.node_name() not in re.split(r"[,\s]+", nodes):
        raise PveError(f"storage '{storeid}' is not available on node '{paths.node_name()}'")
    return scfg


def parse_volume_id(volid: str) -> tuple[str, str]:
    m = VOLID_RE.fullmatch(volid)
    if not m:
        raise PveError(f"unable to parse volume ID '{volid}'")
    return m.group(1), m.group(2)


def is_volume_id(volid: str) -> bool:
    return VOLID_RE.fullmatch(volid) is not None


def resolve(volid: str, cfg: dict[str, Storage] | None = None) -> tuple[Storage, str]:
    storeid, volname = parse_volume_id(volid)
    return get_storage(storeid, cfg), volname


def volume_path(volid: str, cfg: dict[str, Storage] | None = None) -> Path:
    scfg, volname = resolve(volid, cfg)
    return scfg.volume_path(volname)


def volume_owner(volid: str, cfg: dict[str, Storage] | None = None) -> int | None:
    scfg, volname = resolve(volid, cfg)
    return scfg.parse_volname(volname)[2]


def archive_auxiliaries_remove(archive: Path) -> None:
    """Storage.pm archive_auxiliaries_remove: the `.log` and `.notes` files of a standard-named archive."""
    std = STD_BACKUP_RE.fullmatch(archive.name)
    if not std:
        return
    base = archive.name[: -len(std.group(9)) - 1]
    for name in (base + ".log", archive.name + ".notes"):
        try:
            (archive.parent / name).unlink()
        except FileNotFoundError:
            pass


def free_volume(volid: str, cfg: dict[str, Storage] | None = None) -> None:
    scfg, volname = resolve(volid, cfg)
    scfg.free(volname)


# --- recorded sizes ------------------------------------------------------------------------------

@contextmanager
def _sizes_db():
    paths.private_dir().mkdir(parents=True, exist_ok=True)
    lock_path = paths.private_dir() / "volume-sizes.lock"
    db_path = paths.private_dir() / "volume-sizes.json"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(db_path.read_text()) if db_path.exists() else {}
        before = dict(data)
        yield data
        if data != before:
            tmp = db_path.with_suffix(f".tmp.{os.getpid()}")
            tmp.write_text(json.dumps(data, sort_keys=True))
            os.replace(tmp, db_path)


def set_volume_size(volid: str, size: int) -> None:
    with _sizes_db() as data:
        data[volid] = int(size)


def get_volume_size(volid: str) -> int | None:
    with _sizes_db() as data:
        return data.get(volid)


def forget_volume_size(volid: str) -> None:
    with _sizes_db() as data:
        data.pop(volid, None)
