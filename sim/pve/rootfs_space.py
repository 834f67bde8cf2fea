"""The rootfs must hold the whole unpacked image (pve-container `LXC/Create.pm`
restore_oci_archive -> proxmox-oci `parse_and_extract_image`).

PVE allocates the rootfs at its requested size, then extracts every layer into it; nothing
checks the size first, so an image larger than the rootfs fails part-way with ENOSPC (or
EDQUOT on a ZFS subvolume with a refquota), the create task fails and PVE frees the new
disks. The simulator sums the sizes of the regular files the layers would leave (whiteouts
and later layers applied) before it writes anything, and fails the same way when they do
not fit; a sparse member counts with its full size, as the extractor writes it out in full.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from . import oci
from .errors import PveError

ENOSPC = "No space left on device (os error 28)"


def unpacked_size(path: Path) -> int:
    """Bytes of regular files the image's layers leave in a rootfs."""
    files: dict[str, int] = {}
    with tarfile.open(path, "r:") as tar:
        archive = oci._Archive(tar)
        manifest = oci._pick_manifest(archive)
        for desc in manifest.get("layers") or []:
            kind = oci.LAYER_TYPES.get(desc.get("mediaType", ""), None)
            data = oci._decompress(archive.blob(desc["digest"]), kind)
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as layer:
                for member in layer.getmembers():
                    name = oci._norm(member.name).rstrip("/")
                    base = name.rsplit("/", 1)[-1]
                    parent = name.rsplit("/", 1)[0] if "/" in name else ""
                    if base == ".wh..wh..opq":
                        for key in [k for k in files if k.startswith(parent + "/")]:
                            del files[key]
                    elif base.startswith(".wh."):
                        gone = (parent + "/" if parent else "") + base[4:]
                        for key in [k for k in files if k == gone or k.startswith(gone + "/")]:
                            del files[key]
                    elif member.isfile():
                        files[name] = member.size
                    else:
                        files.pop(name, None)
    return sum(files.values())


def check(path: Path, rootfs_bytes: int | None) -> None:
    """Fail as the extraction would when the image does not fit the rootfs."""
    if not rootfs_bytes:
        return
    try:
        need = unpacked_size(path)
    except (tarfile.TarError, OSError, KeyError, ValueError):
        return  # a broken archive fails in oci.extract with its own message
    if need > rootfs_bytes:
        raise oci.OciError(f"failed to unpack image into rootfs: {ENOSPC} "
                           f"(the image unpacks to {need} bytes, the rootfs holds {rootfs_bytes})")
