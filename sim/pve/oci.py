"""OCI archives as container templates (pve-container `LXC/Create.pm`, proxmox-oci).

* Detection: the file name ends in `.tar` and the tar lists `oci-layout`, `index.json` and at
  least one `blobs/...` entry.
* Extraction: index -> first manifest -> config + layers; layers (tar, tar+gzip, tar+zstd)
  are flattened into the rootfs folder with whiteouts applied.
* `image_settings` maps the image config to container settings (reference §4).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import PveError

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": None,
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
}
CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class OciError(PveError):
    def __init__(self, message: str):
        super().__init__(f"Error while extracting OCI image: {message}")


@dataclass
class ImageConfig:
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    stop_signal: str = ""
    volumes: list[str] = field(default_factory=list)
    architecture: str = "amd64"
    # owner and mode of each extracted directory, CT ids: the sim cannot chown (volattrs.py)
    dir_attrs: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def is_oci_archive(path: Path) -> bool:
    if not path.name.endswith(".tar"):
        return False
    try:
        with tarfile.open(path, "r:") as tar:
            names = {_norm(n) for n in tar.getnames()}
    except (tarfile.TarError, OSError):
        return False
    return ("oci-layout" in names and "index.json" in names
            and any(n.startswith("blobs/") and n != "blobs/" for n in names))


class _Archive:
    def __init__(self, tar: tarfile.TarFile):
        self.tar = tar
        self.members = {_norm(m.name): m for m in tar.getmembers()}

    def read(self, name: str) -> bytes:
        member = self.members.get(name)
        if member is None:
            raise OciError(f"missing file '{name}' in archive")
        fh = self.tar.extractfile(member)
        if fh is None:
            raise OciError(f"'{name}' is not a regular file")
        return fh.read()

    def blob(self, digest: str) -> bytes:
        algo, _, hexpart = digest.partition(":")
        return self.read(f"blobs/{algo}/{hexpart}")

    def json_blob(self, digest: str) -> dict:
        try:
            return json.loads(self.blob(digest))
        except ValueError as err:
            raise OciError(f"invalid JSON in blob {digest}: {err}")


def _pick_manifest(archive: _Archive) -> dict:
    index = json.loads(archive.read("index.json"))
    for _depth in range(4):
        manifests = index.get("manifests") or []
        if not manifests:
            raise OciError("no manifest found in index")
        desc = manifests[0]  # PVE passes no architecture: the first manifest wins
        if desc.get("mediaType") == MT_INDEX:
            index = archive.json_blob(desc["digest"])
            continue
        if desc.get("mediaType") not in (MT_MANIFEST, None):
            raise OciError("Wrong media type")
        return archive.json_blob(desc["digest"])
    raise OciError("nested image index too deep")


def _decompress(data: bytes, kind: str | None) -> bytes:
    if kind == "gzip":
        return gzip.decompress(data)
    if kind == "zstd":
        zstd = shutil.which("zstd")
        if not zstd:
            raise OciError("zstd layers need the 'zstd' program on the simulated host")
        proc = subprocess.run([zstd, "-dc"], input=data, capture_output=True, check=False)
        if proc.returncode != 0:
            raise OciError(f"zstd failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout
    return data


def _inside(root: Path, target: Path) -> bool:
    real_root = os.path.realpath(root)
    real = os.path.realpath(target.parent)
    return real == real_root or real.startswith(real_root + os.sep)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


# The default id map of an unprivileged CT (LXC.pm parse_id_maps): CT id N is host id 100000+N.
ID_MAP_BASE, ID_MAP_SIZE = 100000, 65536


@dataclass
class Mount:
    """A mount point mounted while the image is extracted (LXC.pm mount_all, `ro` ignored)."""
    path: str          # in the CT, e.g. /media
    source: Path       # where its files are on the host
    kind: str          # volume | bind


class _Target:
    """Where a member of a layer lands: the rootfs, or a mount point's source mounted over it.

    PVE extracts with every create-time mount point mounted (API2/LXC.pm create_vm calls
    LXC.pm mount_all before Create.pm restore_oci_archive), so the image's files under a
    mount path go into the mount's source. The extractor (proxmox-oci extract_archive, the
    `tar` crate with preserve_ownerships) chowns every directory it meets, an existing one
    too, inside the CT's user namespace: a bind source owned by an id outside the map
    fails with EPERM, which PVE reports as `failed to unpack <path>`."""

    def __init__(self, root: Path, mounts: list[Mount], shown_root: str):
        self.root = root
        self.mounts = sorted(mounts, key=lambda m: len(m.path), reverse=True)
        self.shown_root = shown_root.rstrip("/")

    def locate(self, name: str) -> tuple[Path, Path, Mount | None]:
        """(host path, the root it must stay inside, the mount it falls under)."""
        ct_path = "/" + name
        for mount in self.mounts:
            base = mount.path.rstrip("/") or "/"
            if ct_path == base or ct_path.startswith(base.rstrip("/") + "/"):
                rest = ct_path[len(base):].lstrip("/")
                return (mount.source / rest if rest else mount.source), mount.source, mount
        return self.root.joinpath(*name.split("/")), self.root, None

    def refuse(self, name: str) -> OciError:
        return OciError(f"IO error: failed to unpack `{self.shown_root}/{name}`")


def _mapped(st: os.stat_result) -> bool:
    return all(ID_MAP_BASE <= i < ID_MAP_BASE + ID_MAP_SIZE for i in (st.st_uid, st.st_gid))


def _into_bind(target: Path, mount: Mount, member: tarfile.TarInfo, where: _Target, name: str) -> None:
    """A member that lands in a bind source: checked and owned as the user namespace allows."""
    parent = target if member.isdir() and target.is_dir() else target.parent
    holder = parent if parent.exists() else mount.source
    if not _mapped(os.stat(holder)):
        raise where.refuse(name)  # EPERM (chown) / EACCES (create) for an unmapped owner


def _apply_layer(layer: tarfile.TarFile, root: Path, where: "_Target | None" = None,
                 attrs: dict | None = None) -> None:
    where = where or _Target(root, [], str(root))
    members = layer.getmembers()
    # whiteouts only hide lower layers, so apply them before this layer's own entries
    for m in members:
        name = _norm(m.name)
        parts = name.split("/")
        if ".." in parts or not name:
            continue
        base, parent = parts[-1], root.joinpath(*parts[:-1]) if len(parts) > 1 else root
        if base == ".wh..wh..opq":
            if parent.is_dir() and not parent.is_symlink() and _inside(root, parent / "x"):
                for child in parent.iterdir():
                    _remove(child)
        elif base.startswith(".wh."):
            target = parent / base[4:]
            if _inside(root, target) and (target.exists() or target.is_symlink()):
                _remove(target)
    # proxmox-oci extract_archive: entries in order, directories delayed to the end and
    # applied in reverse path order
    ordered = [m for m in members if not m.isdir()]
    ordered += sorted((m for m in members if m.isdir()), key=lambda m: _norm(m.name), reverse=True)
    for m in ordered:
        name = _norm(m.name).rstrip("/")
        parts = name.split("/")
        if not name or name == "." or ".." in parts or parts[-1].startswith(".wh."):
            continue
        target, inside, mount = where.locate(name)
        if target != inside and not _inside(inside, target):
            continue
        if mount is not None and mount.kind == "bind":
            _into_bind(target, mount, m, where, name)
        if m.isdir():
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                _remove(target)
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, m.mode & 0o7777 | 0o700)
            if attrs is not None:  # the extractor keeps the image's owners and modes
                attrs["/" + name] = (m.uid, m.gid, m.mode & 0o7777)
            if mount is not None and mount.kind == "bind":
                os.chown(target, ID_MAP_BASE + m.uid, ID_MAP_BASE + m.gid)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            _remove(target)
        if m.issym():
            os.symlink(m.linkname, target)
        elif m.islnk():
            source = root / _norm(m.linkname)
            if source.exists() and _inside(root, source):
                os.link(source, target)
        elif m.isfile() and m.sparse:
            _write_sparse(layer, m, target)
            os.chmod(target, m.mode & 0o7777)
        elif m.isfile():
            fh = layer.extractfile(m)
            with open(target, "wb") as out:
                shutil.copyfileobj(fh, out)
            os.chmod(target, m.mode & 0o7777)
            if mount is not None and mount.kind == "bind":
                os.chown(target, ID_MAP_BASE + m.uid, ID_MAP_BASE + m.gid)
        # device nodes and fifos are skipped in the simulator


def _write_sparse(layer: tarfile.TarFile, m: tarfile.TarInfo, target: Path) -> None:
    """A sparse member keeps its holes (the simulated disk need not hold gigabytes of zeros)."""
    fh = layer.extractfile(m)
    with open(target, "wb") as out:
        for offset, size in m.sparse:
            fh.seek(offset)
            out.seek(offset)
            out.write(fh.read(size))
        out.truncate(m.size)


def extract(path: Path, rootfs: Path, mounts: list[Mount] | None = None,
            shown_root: str | None = None) -> ImageConfig:
    """Flatten the image's layers into `rootfs` (and the `mounts` mounted over it) and
    return its config. `shown_root` is the rootfs path messages name (PVE's
    /var/lib/lxc/<vmid>/rootfs)."""
    where = _Target(rootfs, list(mounts or []), shown_root or str(rootfs))
    try:
        tar = tarfile.open(path, "r:")
    except (tarfile.TarError, OSError) as err:
        raise OciError(str(err))
    with tar:
        archive = _Archive(tar)
        manifest = _pick_manifest(archive)
        if manifest.get("mediaType") not in (MT_MANIFEST, None):
            raise OciError("Wrong media type")
        config_desc = manifest.get("config") or {}
        if config_desc.get("mediaType") != MT_CONFIG:
            raise OciError("Wrong media type")
        config = archive.json_blob(config_desc["digest"])
        layers = manifest.get("layers") or []
        for desc in layers:
            media_type = desc.get("mediaType", "")
            if media_type not in LAYER_TYPES:
                raise OciError(f"Layer has wrong media type: {media_type}")
        rootfs.mkdir(parents=True, exist_ok=True)
        attrs: dict[str, tuple[int, int, int]] = {}
        for desc in layers:
            data = _decompress(archive.blob(desc["digest"]), LAYER_TYPES[desc["mediaType"]])
            try:
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as layer:
                    _apply_layer(layer, rootfs, where, attrs)
            except tarfile.TarError as err:
                raise OciError(f"invalid layer {desc['digest']}: {err}")
    image = _image_config(config)
    image.dir_attrs = attrs
    return image


def _image_config(config: dict) -> ImageConfig:
    cfg = config.get("config") or {}
    arch = config.get("architecture") or "amd64"
    return ImageConfig(
        entrypoint=list(cfg.get("Entrypoint") or []),
        cmd=list(cfg.get("Cmd") or []),
        env=list(cfg.get("Env") or []),
        working_dir=cfg.get("WorkingDir") or "",
        user=cfg.get("User") or "",
        stop_signal=cfg.get("StopSignal") or "",
        volumes=sorted((cfg.get("Volumes") or {}).keys()),
        architecture={"x86_64": "amd64", "aarch64": "arm64", "arm": "armhf"}.get(arch, arch),
    )


# --- image config -> container settings ------------------------------------------------------

def shellquote(word: str) -> str:
    """PVE::Tools::shellquote."""
    if word == "":
        return "''"
    if not re.search(r"[^\w\-/.,:+@%=]", word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def check_control_chars(img: ImageConfig) -> None:
    fields = {
        "Entrypoint": img.entrypoint, "Cmd": img.cmd, "Env": img.env,
        "WorkingDir": [img.working_dir], "User": [img.user],
        "StopSignal": [img.stop_signal], "Volumes": img.volumes,
    }
    for name, values in fields.items():
        if any(CONTROL_RE.search(v or "") for v in values):
            raise PveError(f"OCI config value for '{name}' contains forbidden control characters!")


def _read_db(path: Path) -> list[list[str]]:
    try:
        return [line.split(":") for line in path.read_text().splitlines() if line and
                not line.startswith("#")]
    except OSError:
        return []


def resolve_user(rootfs: Path, user: str) -> tuple[int, int, list[int]]:
    """`User` -> (uid, gid, supplementary gids) via the image's passwd and group files."""
    passwd = _read_db(rootfs / "etc" / "passwd")
    group = _read_db(rootfs / "etc" / "group")
    name, _, grp = user.partition(":")
    uid = gid = None
    username = None
    for entry in passwd:
        if len(entry) >= 4 and (entry[0] == name or entry[2] == name):
            uid, gid, username = int(entry[2]), int(entry[3]), entry[0]
            break
    if uid is None:
        if not name.isdigit():
            raise PveError(f"unable to find user '{name}' in the image's /etc/passwd")
        uid, gid = int(name), 0
    if grp:
        for entry in group:
            if len(entry) >= 3 and (entry[0] == grp or entry[2] == grp):
                gid = int(entry[2])
                break
        else:
            if not grp.isdigit():
                raise PveError(f"unable to find group '{grp}' in the image's /etc/group")
            gid = int(grp)
    extra: list[int] = []
    if username:
        for entry in group:
            if len(entry) >= 4 and username in entry[3].split(",") and int(entry[2]) != gid:
                extra.append(int(entry[2]))
    return uid, gid, extra


def image_settings(img: ImageConfig, rootfs: Path, log: Callable[[str], None]) -> dict:
    """-> {'entrypoint': str|None, 'env': str|None, 'lxc': [(k, v)], 'app': bool}"""
    check_control_chars(img)
    command = img.entrypoint + img.cmd
    app = bool(command) and command[0] != "/sbin/init"
    lxc: list[tuple[str, str]] = [("lxc.init.cwd", img.working_dir or "/"),
                                   ("lxc.signal.halt", img.stop_signal or "SIGTERM")]
    if img.user:
        uid, gid, extra = resolve_user(rootfs, img.user)
        lxc += [("lxc.init.uid", str(uid)), ("lxc.init.gid", str(gid))]
        if extra:
            lxc.append(("lxc.init.groups", ",".join(str(g) for g in extra)))
    for volume in img.volumes:
        log(f"creating base directory for volume at {volume}")
        target = rootfs / volume.lstrip("/")
        if _inside(rootfs, target):
            target.mkdir(parents=True, exist_ok=True)
    return {
        "entrypoint": " ".join(shellquote(w) for w in command) if app else None,
        "env": "\0".join(img.env) if img.env else None,
        "lxc": lxc,
        "app": app,
    }
