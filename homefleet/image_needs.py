"""Images whose entrypoint needs its data directory empty on first start, for warnings about
compose files: a Proxmox storage volume on anything but ZFS is a fresh ext4 file system with
`lost+found` at its top (pve-container `LXC.pm` `mkfs`), which such an entrypoint reads as
"not empty". ZFS subvolumes start empty. See docs/proxmox.md "Volume ownership".
"""

from __future__ import annotations

from typing import Optional

from .imageref import ImageRefError, parse_image_ref

# last part of the repository -> (default data path, variable that moves it, what happens, fix)
NEEDS_EMPTY = {
    "postgres": ("/var/lib/postgresql/data", "PGDATA", "initdb refuses a directory that is not empty",
                 "Set PGDATA to a subdirectory, e.g. PGDATA: /var/lib/postgresql/data/pgdata"),
    "nextcloud": ("/var/www/html/data", None, "the entrypoint sets up data/ only when it is missing or empty",
                  "Mount the volume at /var/www/html and let data/ live inside it"),
}
ALIASES = {"pgvector": "postgres", "postgis": "postgres", "pgvecto-rs": "postgres"}


def empty_dir_warning(image: str, env: dict, volume_paths: list) -> Optional[tuple]:
    """(path, message, fix) when a volume's top is where `image` needs an empty directory."""
    try:
        name = parse_image_ref(image).repository.rsplit("/", 1)[-1]
    except (ImageRefError, AttributeError, ValueError):
        name = image.split("@")[0].rsplit(":", 1)[0].rsplit("/", 1)[-1]
    need = NEEDS_EMPTY.get(ALIASES.get(name, name))
    if need is None:
        return None
    default, var, what, fix = need
    path = str((env or {}).get(var) or default) if var else default
    if path.rstrip("/") not in {str(p).rstrip("/") for p in volume_paths}:
        return None
    return path, (f"is the top of a storage volume, which holds lost+found on every Proxmox storage but "
                  f"ZFS, and {what}"), fix
