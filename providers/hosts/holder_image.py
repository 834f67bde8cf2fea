"""The data holder's template: a tiny OCI archive homefleet builds itself, byte for byte the same
on every run, and uploads once per host (on stdin of the park script, only when missing or
different).

Why not the app's image: `pct create` always extracts the whole image into the new rootfs
(pve-container `LXC/Create.pm` restore_oci_archive -> proxmox-oci parse_and_extract_image), and a
holder only needs a rootfs to exist, so a 2 GB image in a 1 GiB rootfs fails with ENOSPC. This
archive unpacks to one small text file.

Layout (OCI image layout 1.0 in a plain tar, the format `pct create` detects as OCI): `oci-layout`,
`index.json`, and under `blobs/sha256/` the manifest, the image config and one uncompressed layer.
"""

import hashlib
import io
import json
import tarfile
from functools import lru_cache

NAME_PREFIX = "homefleet-holder"
_EPOCH = 1700000000
_README = b"homefleet data holder: this CT only owns an app's data volumes; it is never started.\n"


def _tar(entries: list) -> bytes:
    """A deterministic ustar archive of (name, bytes or None for a directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = _EPOCH
            info.uname = info.gname = "root"
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.mode, info.size = 0o644, len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=1)
def archive() -> bytes:
    """The holder archive's bytes."""
    layer = _tar([("etc/", None), ("etc/homefleet-holder", _README)])
    config = _json({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/sbin/init"], "Labels": {"org.opencontainers.image.title": NAME_PREFIX}},
        "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
    })
    manifest = _json({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(layer),
                    "size": len(layer)}],
    })
    index = _json({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(manifest),
                       "size": len(manifest)}],
    })
    entries = [("oci-layout", _json({"imageLayoutVersion": "1.0.0"})), ("index.json", index), ("blobs/", None),
               ("blobs/sha256/", None)]
    for blob in (manifest, config, layer):
        entries.append((f"blobs/sha256/{hashlib.sha256(blob).hexdigest()}", blob))
    return _tar(entries)


def sha256() -> str:
    return hashlib.sha256(archive()).hexdigest()


def file_name() -> str:
    """Content-addressed: a different archive is a different file, so an old one is never reused."""
    return f"{NAME_PREFIX}-{sha256()[:16]}.tar"


def volid(template_storage: str) -> str:
    return f"{template_storage}:vztmpl/{file_name()}"
