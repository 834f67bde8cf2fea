"""`pvesm path|list|status|free` (pve-storage `PVE/CLI/pvesm.pm`)."""

from __future__ import annotations

import os
import sys

from . import cli_args, storage
from .cli_args import Command
from .errors import PveError
from .schema import Prop

CONTENT_TYPES = ["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"]


def cmd_path(params: dict) -> int:
    print(storage.volume_path(params["volume"]))
    return 0


def cmd_list(params: dict) -> int:
    cfg = storage.load_config()
    scfg = storage.get_storage(params["storage"], cfg)
    content = params.get("content")
    vmid = int(params["vmid"]) if params.get("vmid") else None
    items = sorted(scfg.list_volumes(), key=lambda i: i["volid"].lower())   # Storage.pm volume_list
    if content:
        wanted = set(content.split(","))
        items = [i for i in items if i["content"] in wanted]
    if vmid is not None:
        items = [i for i in items if i.get("vmid") == vmid]
    maxname = max((len(i["volid"]) for i in items), default=0)
    maxsize = max((i.get("size") or 0 for i in items), default=0)
    sizedigits = len(str(maxsize))
    base = f"{{:<{maxname}}} {{:<7}} {{:<9}} {{:>{sizedigits}}}"
    out = (base + " {}\n").format("Volid", "Format", "Type", "Size", "VMID")
    for i in items:
        if i.get("vmid"):
            out += (base + " {}\n").format(i["volid"], i["format"], i["content"], i["size"], i["vmid"])
    for i in sorted((i for i in items if not i.get("vmid")), key=lambda i: i["format"]):
        out += (base + "\n").format(i["volid"], i["format"], i["content"], i["size"])
    sys.stdout.write(out)
    return 0


def cmd_status(params: dict) -> int:
    cfg = storage.load_config()
    rows = []
    for storeid in sorted(cfg):
        scfg = cfg[storeid]
        if params.get("storage") and storeid != params["storage"]:
            continue
        if params.get("content") and params["content"] not in scfg.content:
            continue
        base = scfg.base_path()
        probe = base
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        st = os.statvfs(probe)
        total, avail = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        used = total - st.f_bfree * st.f_frsize
        rows.append((storeid, scfg, total, used, avail))
    if params.get("storage") and not rows:
        raise PveError(f"storage '{params['storage']}' does not exist")
    width = max((len(r[0]) for r in rows), default=0) + 1
    out = f"{'Name':<{width}} {'Type':>10} {'Status':>10} {'Total':>15} {'Used':>15} {'Available':>15} {'%':>8}\n"
    for storeid, scfg, total, used, avail in rows:
        if scfg.disabled:
            status, pct = "disabled", f"{'N/A':>8}"
        else:
            status = "active"
            pct = f"{(used * 100 / total) if total else 0:7.2f}%"
        out += (f"{storeid:<{width}} {scfg.type:>10} {status:>10} {total // 1024:>15} "
                f"{used // 1024:>15} {avail // 1024:>15} {pct}\n")
    sys.stdout.write(out)
    return 0


def cmd_free(params: dict) -> int:
    """Content.pm delete: vdisk_free in a worker; for a backup also its .log and .notes files."""
    volid = params["volume"]
    cfg = storage.load_config()
    scfg, volname = storage.resolve(volid, cfg)
    vtype = scfg.parse_volname(volname)[0]
    path = scfg.volume_path(volname)

    scfg.free(volname)
    if vtype == "backup":
        print(f"Removed volume '{volid}'")
        storage.archive_auxiliaries_remove(path)
    return 0


COMMANDS = {
    "path": (Command("pvesm", "path", ["volume"], {"volume": Prop(optional=False)}), cmd_path),
    "list": (Command("pvesm", "list", ["storage"], {
        "storage": Prop(optional=False, format="pve-storage-id"),
        "content": Prop(enum=CONTENT_TYPES),
        "vmid": Prop(type="integer", format="pve-vmid", minimum=100, maximum=999_999_999),
    }), cmd_list),
    "status": (Command("pvesm", "status", [], {
        "storage": Prop(format="pve-storage-id"),
        "content": Prop(enum=CONTENT_TYPES),
        "enabled": Prop(type="boolean"),
        "target": Prop(),
        "format": Prop(type="boolean"),
    }), cmd_status),
    "free": (Command("pvesm", "free", ["volume"], {
        "volume": Prop(optional=False),
        "storage": Prop(format="pve-storage-id"),
        "delay": Prop(type="integer", minimum=1, maximum=30),
    }), cmd_free),
}


def main(argv: list[str]) -> int:
    return cli_args.run_tool("pvesm", COMMANDS, argv)
