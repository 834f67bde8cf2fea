"""vzdump's container archive: a real tar (optionally zstd/gzip compressed) of the CT's file tree.

Layout (pve-container `src/PVE/VZDump/LXC.pm` `assemble` and `archive`):
  * `./etc/vzdump/pct.conf` (the CT config without lock, snapshots, parent and pending) and
    `./etc/vzdump/pct.fw` (the firewall file, empty when there is none) come first;
  * then the rootfs from `.`, and each included volume mount point from `./<mp path>`
    (`tar --one-file-system`: the rootfs walk stops at every mount point).
Owners in the archive are the CT's ids (PVE runs tar inside the CT's user namespace); in the
simulator they come from volattrs.py. Unprivileged CTs skip `lost+found` (`--exclude=lost+found`),
`stdexcludes` skips `/tmp/?*`, `/var/tmp/?*` and `/var/run/?*.pid` (PVE/VZDump.pm `new`).
Restore (pve-container `src/PVE/LXC/Create.pm` `restore_tar_archive_command`) extracts with
`--skip-old-files` and `--exclude ./dev/*`.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path, PurePosixPath

from . import volattrs
from .errors import PveError

CONF_MEMBER = "./etc/vzdump/pct.conf"
FW_MEMBER = "./etc/vzdump/pct.fw"
STD_EXCLUDES = ("/tmp/?*", "/var/tmp/?*", "/var/run/?*.pid")


def _zstd() -> str:
    path = shutil.which("zstd")
    if not path:
        raise PveError("unable to find command 'zstd'")
    return path


class _Counter(io.RawIOBase):
    def __init__(self, sink):
        self.sink, self.count = sink, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.sink.write(data)
        self.count += len(data)
        return len(data)


def compression_of(name: str) -> str | None:
    """Create.pm tar_compression_option: the archive's compression from its name."""
    for ext, comp in ((".tar", None), (".tar.zst", "zstd"), (".tar.gz", "gzip"), (".tgz", "gzip")):
        if name.endswith(ext):
            return comp
    for ext in (".tar.lzo", ".tar.bz2", ".tar.xz"):
        if name.endswith(ext):
            raise PveError(f"unrecognized compression format: {ext[4:]}")
    raise PveError(f"file does not look like a template archive: {name}")


class _Sink:
    """A file written through zstd/gzip or plain."""

    def __init__(self, path: Path, comp: str | None):
        self.fh = open(path, "wb")
        self.proc = None
        if comp == "zstd":
            self.proc = subprocess.Popen([_zstd(), "-q", "-c", "--threads=1"], stdin=subprocess.PIPE, stdout=self.fh)
            self.stream = self.proc.stdin
        elif comp == "gzip":
            self.stream = gzip.GzipFile(fileobj=self.fh, mode="wb")
        else:
            self.stream = self.fh

    def close(self) -> None:
        self.stream.close()
        if self.proc is not None and self.proc.wait() != 0:
            raise PveError(f"zstd exited with {self.proc.returncode}")
        self.fh.close()


def _open_read(path: Path):
    comp = compression_of(path.name)
    if comp == "zstd":
        proc = subprocess.Popen([_zstd(), "-q", "-d", "-c", str(path)], stdout=subprocess.PIPE)
        return proc.stdout, proc
    if comp == "gzip":
        return gzip.open(path, "rb"), None
    return open(path, "rb"), None


def _excluded(ct_path: str, excludes: list[str], unprivileged: bool) -> bool:
    if unprivileged and PurePosixPath(ct_path).name == "lost+found":
        return True
    return any(fnmatch.fnmatchcase(ct_path, pattern) for pattern in excludes)


def write(target: Path, comp: str | None, conf_text: str, fw_text: str,
          sources: list[tuple[str, str | None, Path]], mount_paths: set[str], unprivileged: bool,
          excludes: list[str]) -> int:
    """Write the archive; -> bytes of tar written. `sources`: (ct path, volid, host dir) of the
    rootfs and each included volume; `mount_paths`: every mount point's ct path (not descended
    into from the volume above it)."""
    sink = _Sink(target, comp)
    counter = _Counter(sink.stream)
    try:
        with tarfile.open(fileobj=counter, mode="w|", format=tarfile.GNU_FORMAT) as tar:
            for name, text in ((CONF_MEMBER, conf_text), (FW_MEMBER, fw_text)):
                data = text.encode("utf-8")
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
            for ct_path, volid, host in sources:
                _add_tree(tar, ct_path, volid, host, mount_paths, unprivileged, excludes)
    finally:
        sink.close()
    return counter.count


def _add_tree(tar, top: str, volid: str | None, host: Path, mount_paths: set[str], unprivileged: bool,
              excludes: list[str]) -> None:
    def arcname(ct_path: str) -> str:
        return "." if ct_path == "/" else "." + ct_path

    def add(ct_path: str, path: Path, rel: str) -> None:
        if ct_path != top and _excluded(ct_path, excludes, unprivileged):
            return
        st = os.lstat(path)
        info = tarfile.TarInfo(arcname(ct_path))
        info.mtime = int(st.st_mtime)
        if path.is_symlink():
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
            tar.addfile(info)
        elif path.is_dir():
            uid, gid, mode = volattrs.get(volid, rel) if volid else volattrs.ROOT_DIR
            info.type, info.uid, info.gid, info.mode = tarfile.DIRTYPE, uid, gid, mode
            tar.addfile(info)
            if ct_path != top and ct_path in mount_paths:
                return                       # --one-file-system: another volume's mount point
            for child in sorted(os.listdir(path)):
                sub = (ct_path.rstrip("/") + "/" + child)
                add(sub, path / child, f"{rel}/{child}".strip("/"))
        elif path.is_file():
            info.size, info.mode = st.st_size, st.st_mode & 0o7777
            with open(path, "rb") as fh:
                tar.addfile(info, fh)

    add(top, host, "")


def read_config(path: Path) -> str:
    """Storage.pm extract_vzdump_config_tar: the first `./etc/vzdump/pct.conf`."""
    if not path.is_file():
        raise PveError(f"ERROR: file '{path}' does not exist")
    stream, proc = _open_read(path)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if member.name in (CONF_MEMBER, CONF_MEMBER[2:]) and member.isfile():
                    return tar.extractfile(member).read().decode("utf-8")
    except tarfile.TarError as err:
        raise PveError(f"command 'tar -xpOf {path}' failed: {err}")
    finally:
        stream.close()
        if proc is not None:
            proc.kill()
            proc.wait()
    raise PveError("ERROR: archive contains no configuration file")


def extract(path: Path, locate) -> int:
    """Unpack into the CT's tree. `locate(ct_path)` -> (volid or None, host path, rel) for the
    volume that holds ct_path. Existing files are kept (--skip-old-files); `./dev/*` is skipped.
    -> bytes read."""
    stream, proc = _open_read(path)
    total = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                total += tarfile.BLOCKSIZE + (member.size + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE
                name = member.name[2:] if member.name.startswith("./") else member.name.lstrip("/")
                if name in ("", "."):
                    ct_path = "/"
                else:
                    if ".." in PurePosixPath(name).parts:
                        continue                # tar refuses '..' members
                    ct_path = "/" + name.rstrip("/")
                if ct_path.startswith("/dev/"):
                    continue
                volid, host, rel = locate(ct_path)
                if member.isdir():
                    host.mkdir(parents=True, exist_ok=True)
                    if volid:
                        attrs = (member.uid, member.gid, member.mode & 0o7777)
                        if attrs != volattrs.ROOT_DIR or volattrs.get(volid, rel) != volattrs.ROOT_DIR:
                            volattrs.set_attrs(volid, rel, attrs)
                elif host.exists() or host.is_symlink():
                    continue                    # --skip-old-files
                elif member.issym():
                    host.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(member.linkname, host)
                elif member.isfile():
                    host.parent.mkdir(parents=True, exist_ok=True)
                    with open(host, "wb") as out:
                        shutil.copyfileobj(tar.extractfile(member), out)
                    os.chmod(host, member.mode & 0o7777)
    except tarfile.TarError as err:
        raise PveError(f"command 'tar xpf - --totals' failed: {err}")
    finally:
        stream.close()
        if proc is not None:
            proc.wait()
    return total
