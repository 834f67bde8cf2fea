"""`pveam available|download|list|remove`: the appliance (template) manager.

Downloads are simulated: a small archive holding an `etc/os-release` is written into the
storage's template cache (`.tar.xz` really xz-compressed, `.tar.zst` a valid zstd frame of raw
blocks, `.tar.gz` gzip).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import struct
import sys
import tarfile

from . import cli_args, paths, storage, task
from .cli_args import Command
from .errors import ParamError, PveError
from .ossetup import template_os
from .schema import Prop

BASE_URL = "http://download.proxmox.com/images"

AVAILABLE = {
    "system": [
        "almalinux-9-default_20240911_amd64.tar.xz",
        "alpine-3.20-default_20240908_amd64.tar.xz",
        "alpine-3.21-default_20241217_amd64.tar.xz",
        "alpine-3.22-default_20250617_amd64.tar.xz",
        "archlinux-base_20240911-1_amd64.tar.zst",
        "centos-9-stream-default_20240828_amd64.tar.xz",
        "debian-11-standard_11.7-1_amd64.tar.zst",
        "debian-12-standard_12.7-1_amd64.tar.zst",
        "debian-12-standard_12.12-1_amd64.tar.zst",
        "debian-13-standard_13.1-2_amd64.tar.zst",
        "devuan-5.0-standard_5.0_amd64.tar.gz",
        "fedora-42-default_20250428_amd64.tar.xz",
        "gentoo-current-openrc_20250508_amd64.tar.xz",
        "opensuse-15.6-default_20240910_amd64.tar.xz",
        "rockylinux-9-default_20240912_amd64.tar.xz",
        "ubuntu-22.04-standard_22.04-1_amd64.tar.zst",
        "ubuntu-24.04-standard_24.04-2_amd64.tar.zst",
        "ubuntu-25.04-standard_25.04-1.1_amd64.tar.zst",
    ],
    "turnkeylinux": [
        "debian-12-turnkey-nextcloud_18.2-1_amd64.tar.gz",
        "debian-12-turnkey-wordpress_18.1-1_amd64.tar.gz",
    ],
}
SECTIONS = ["system", "turnkeylinux", "mail"]


def _find(template: str) -> str | None:
    for section, names in AVAILABLE.items():
        if template in names:
            return section
    return None


def _tar_bytes(name: str) -> bytes:
    ident, version = template_os(name)
    os_release = f'ID={ident}\nVERSION_ID="{version}"\nPRETTY_NAME="{ident} {version} (simulated)"\n'
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for folder in ("./", "./etc/", "./sbin/"):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for path, data, mode in (("./etc/os-release", os_release.encode(), 0o644),
                                 ("./sbin/init", b"#!/bin/sh\n# simulated init\n", 0o755)):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zstd_raw(data: bytes) -> bytes:
    """A valid zstd frame that stores `data` in raw blocks (no compression)."""
    out = bytearray(struct.pack("<I", 0xFD2FB528))
    out.append(0xA0)  # single segment, 4-byte frame content size, no checksum
    out += struct.pack("<I", len(data))
    chunk = 128 * 1024 - 1
    blocks = [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b""]
    for index, block in enumerate(blocks):
        last = 1 if index == len(blocks) - 1 else 0
        header = last | (0 << 1) | (len(block) << 3)
        out += header.to_bytes(3, "little") + block
    return bytes(out)


def template_bytes(name: str) -> bytes:
    tar = _tar_bytes(name)
    if name.endswith(".tar.xz"):
        return lzma.compress(tar, format=lzma.FORMAT_XZ)
    if name.endswith(".tar.zst"):
        return _zstd_raw(tar)
    if name.endswith(".tar.gz"):
        return gzip.compress(tar, mtime=0)
    return tar


def _template_storage(storeid: str) -> storage.Storage:
    scfg = storage.check_enabled(storeid)
    if "vztmpl" not in scfg.content or not scfg.is_dir:
        raise PveError(f"storage '{storeid}' does not support templates")
    return scfg


def cmd_available(params: dict) -> int:
    section = params.get("section")
    rows = []
    for sec in sorted(AVAILABLE):
        if section and sec != section:
            continue
        rows += [(sec, name) for name in sorted(AVAILABLE[sec])]
    for sec, name in rows:
        sys.stdout.write(f"{sec:<15} {name}\n")
    return 0


def offline() -> bool:
    """`DIR/<host>/sim/no-internet`: the host cannot reach download.proxmox.com."""
    return (paths.private_dir() / "no-internet").exists()


def cmd_download(params: dict) -> int:
    """pve-manager PVE/API2/Nodes.pm apl_download: checks, then a `download` task running
    pve-common Tools.pm download_file_from_url (wget into `<dest>.tmp_dwnl.<pid>`, checksum,
    rename). PVE/CLI/pveam.pm maps `download` without an `$upid_exit` handler, so a failed
    download prints its error on stderr and exits 0."""
    storeid, template = params["storage"], params["template"]
    section = _find(template)
    if section is None:
        raise ParamError({"template": "no such template"})
    scfg = _template_storage(storeid)
    dest = scfg.base_path() / "template" / "cache" / template
    url = f"{BASE_URL}/{section}/{template}"

    def worker(t: task.Task) -> None:
        data = template_bytes(template)
        t.log(f"downloading {url} to {dest}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{template}.tmp_dwnl.{os.getpid()}")
        t.log(f"--{'2025-11-20 10:00:00'}--  {url}")
        if offline():
            t.log("Resolving download.proxmox.com (download.proxmox.com)... failed: "
                  "Temporary failure in name resolution.")
            t.log("wget: unable to resolve host address 'download.proxmox.com'")
            raise PveError(f"download failed: command 'wget --progress=dot:giga -O {tmp} {url}' "
                           "failed: exit code 4")
        tmp.write_bytes(data)
        t.log(f"Length: {len(data)} ({len(data) / 1024:.0f}K) [application/octet-stream]")
        t.log(f"Saving to: '{tmp}'")
        t.log("calculating checksum...OK, checksum verified")
        t.log(f"sha512sum: {hashlib.sha512(data).hexdigest()}")
        os.replace(tmp, dest)
        t.log(f"download of '{url}' to '{dest}' finished")

    return task.run(worker, upid_exit=False)


def cmd_list(params: dict) -> int:
    scfg = _template_storage(params["storage"])
    items = [v for v in scfg.list_volumes() if v["content"] == "vztmpl"]
    sys.stdout.write(f"{'NAME':<60} {'SIZE':>10}\n")
    for item in items:
        size = f"{item['size'] / (1024 * 1024):.2f}MB"
        sys.stdout.write(f"{item['volid']:<60} {size:>10}\n")
    return 0


def cmd_remove(params: dict) -> int:
    volid = params["template_path"]
    scfg, volname = storage.resolve(volid)
    vtype = scfg.parse_volname(volname)[0]
    if vtype != "vztmpl":
        raise PveError(f"Wrong volume type '{vtype}'")
    scfg.free(volname)
    return 0


COMMANDS = {
    "available": (Command("pveam", "available", [], {"section": Prop(enum=SECTIONS)}), cmd_available),
    "download": (Command("pveam", "download", ["storage", "template"], {
        "storage": Prop(optional=False, format="pve-storage-id"),
        "template": Prop(optional=False, max_length=255)}), cmd_download),
    "list": (Command("pveam", "list", ["storage"], {
        "storage": Prop(optional=False, format="pve-storage-id")}), cmd_list),
    "remove": (Command("pveam", "remove", ["template_path"], {
        "template_path": Prop(optional=False)}), cmd_remove),
}


def main(argv: list[str]) -> int:
    return cli_args.run_tool("pveam", COMMANDS, argv)
