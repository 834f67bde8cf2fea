"""`pct`: the command table, and the read-only commands (config, pending, status, list)."""

from __future__ import annotations

import sys
import time
from typing import Callable

from . import cli_args
from . import conf as conf_mod
from . import paths, runstate
from .cli_args import Command
from .conf import encode_text
from .ct_ops import mount_points
from .ct_schema import CONFDESC, MAX_MOUNT_POINTS, MAX_UNUSED, VMID_PROP
from .errors import ParamError, PveError
from .pct_create import CREATE_ONLY, create
from .pct_exec import exec_command, push_file
from .pct_move import move_volume
from .pct_resize import resize
from .pct_restore import restore
from .pct_power import destroy, reboot, shutdown, start, stop
from .pct_set import SET_ONLY, set_config
from .schema import Prop

B = Prop(type="boolean")
VOLUME_KEYS = ["rootfs"] + [f"mp{i}" for i in range(MAX_MOUNT_POINTS)] + \
    [f"unused{i}" for i in range(MAX_UNUSED)]


def _cmd(name: str, args: list[str], props: dict[str, Prop], optional: set[str] | None = None) -> Command:
    return Command("pct", name, args, {"vmid": VMID_PROP, **props} if "vmid" in args else props,
                   optional or set())


# --- read-only commands -------------------------------------------------------------------------

def config(params: dict) -> int:
    vmid = int(params["vmid"])
    conf = conf_mod.load(vmid)
    snapname = params.get("snapshot")
    if snapname:
        if snapname not in conf.snapshots:
            raise PveError(f"snapshot '{snapname}' does not exist")
        values, lxc = dict(conf.snapshots[snapname].values), conf.snapshots[snapname].lxc
    elif params.get("current") == "1":
        values, lxc = dict(conf.main.values), conf.main.lxc
    else:
        values, lxc = conf.merged(), conf.main.lxc
    out = []
    for key in sorted(values):
        value = values[key]
        if key == "description":
            value = encode_text(value)
        out.append(f"{key}: {value}\n")
    for key, value in lxc:
        out.append(f"{key}: {value}\n")
    sys.stdout.buffer.write("".join(out).encode("utf-8"))
    return 0


def pending(params: dict) -> int:
    conf = conf_mod.load(int(params["vmid"]))
    deletes = conf.pending_delete()
    items: dict[str, dict] = {}
    for key, value in conf.main.values.items():
        items[key] = {"value": value}
    for key, value in conf.pending.values.items():
        if key != "delete":
            items.setdefault(key, {})["pending"] = value
    for key, force in deletes.items():
        items.setdefault(key, {})["delete"] = 2 if force else 1
    out = []
    for key in sorted(items):
        item = items[key]
        v, p = item.get("value"), item.get("pending")
        if key == "description":
            v = encode_text(v) if v is not None else None
            p = encode_text(p) if p is not None else None
        if v is not None:
            if item.get("delete"):
                out.append(f"del {key}: {v}\n")
            elif p is not None:
                out.append(f"cur {key}: {v}\nnew {key}: {p}\n")
            else:
                out.append(f"cur {key}: {v}\n")
        elif p is not None:
            out.append(f"new {key}: {p}\n")
    sys.stdout.buffer.write("".join(out).encode("utf-8"))
    return 0


def vmstatus(vmid: int, conf: conf_mod.CTConfig) -> dict:
    running = runstate.is_running(vmid)
    info = runstate.info(vmid) or {}
    memory = int(conf.get("memory") or 512)
    swap = int(conf.get("swap") or 512)
    maxdisk = 0
    rootfs = dict(mount_points(conf.main.values)).get("rootfs")
    if rootfs and rootfs.get("size"):
        maxdisk = int(rootfs["size"])
    stat = {
        "cpus": int(conf.get("cores") or 1), "disk": 0, "diskread": 0, "diskwrite": 0,
        "maxdisk": maxdisk, "maxmem": memory * 1024 * 1024, "maxswap": swap * 1024 * 1024,
        "mem": 0, "name": conf.get("hostname") or f"CT{vmid}", "netin": 0, "netout": 0,
        "status": "running" if running else "stopped", "swap": 0, "type": "lxc",
        "uptime": int(time.time() - info["started"]) if running and "started" in info else 0,
        "vmid": vmid,
    }
    if running:
        stat["pid"] = info.get("pid")
    if conf.get("lock"):
        stat["lock"] = conf.get("lock")
    if conf.get("tags"):
        stat["tags"] = conf.get("tags")
    if conf.get("template") == "1":
        stat["template"] = 1
    return stat


def status(params: dict) -> int:
    vmid = int(params["vmid"])
    conf = conf_mod.load(vmid)
    stat = vmstatus(vmid, conf)
    if params.get("verbose") == "1":
        for key in sorted(stat):
            if stat[key] is not None:
                print(f"{key}: {stat[key]}")
    else:
        print(f"status: {stat['status']}")
    return 0


def list_cts(params: dict) -> int:
    rows = []
    for vmid in conf_mod.list_vmids():
        try:
            conf = conf_mod.load(vmid)
        except PveError:
            continue
        rows.append((vmid, "running" if runstate.is_running(vmid) else "stopped",
                     conf.get("lock") or "", conf.get("hostname") or ""))
    if not rows:
        return 0
    fmt = "{:<10} {:<10} {:<12} {:<20}\n"
    out = fmt.format("VMID", "Status", "Lock", "Name")
    for row in rows:
        out += fmt.format(*[str(x) for x in row])
    sys.stdout.write(out)
    return 0


# --- command table ------------------------------------------------------------------------------

def _commands() -> dict[str, tuple[Command, Callable[[dict], int]]]:
    create_props = {**CONFDESC, **CREATE_ONLY}
    set_props = {**CONFDESC, **SET_ONLY}
    skiplock = {"skiplock": B}
    table = {
        "create": (_cmd("create", ["vmid", "ostemplate"], create_props), create),
        "restore": (_cmd("restore", ["vmid", "ostemplate"], create_props), restore),
        "set": (_cmd("set", ["vmid"], set_props), set_config),
        "config": (_cmd("config", ["vmid"], {"current": B, "snapshot": Prop(format="pve-configid")}), config),
        "pending": (_cmd("pending", ["vmid"], {}), pending),
        "status": (_cmd("status", ["vmid"], {"verbose": B}), status),
        "list": (_cmd("list", [], {}), list_cts),
        "start": (_cmd("start", ["vmid"], {**skiplock, "debug": B}), start),
        "stop": (_cmd("stop", ["vmid"], {**skiplock, "overrule-shutdown": B}), stop),
        "shutdown": (_cmd("shutdown", ["vmid"], {"timeout": Prop(type="integer", minimum=0),
                                                   "forceStop": B}), shutdown),
        "reboot": (_cmd("reboot", ["vmid"], {"timeout": Prop(type="integer", minimum=0)}), reboot),
        "destroy": (_cmd("destroy", ["vmid"], {"force": B, "purge": B,
                                                 "destroy-unreferenced-disks": B}), destroy),
        "exec": (_cmd("exec", ["vmid", "extra-args"], {"extra-args": Prop()}), exec_command),
        "push": (_cmd("push", ["vmid", "file", "destination"], {
            "file": Prop(optional=False), "destination": Prop(optional=False), "user": Prop(), "group": Prop(),
            "perms": Prop(pattern=r"(0x[0-9a-fA-F]+|[0-7]+)")}), push_file),
        "move-volume": (_cmd("move-volume", ["vmid", "volume", "storage", "target-vmid", "target-volume"], {
            "volume": Prop(optional=False, enum=VOLUME_KEYS),
            "storage": Prop(format="pve-storage-id"),
            "target-vmid": Prop(type="integer", format="pve-vmid", minimum=100, maximum=999_999_999),
            "target-volume": Prop(enum=VOLUME_KEYS),
            "delete": B,
            "digest": Prop(max_length=40),
            "target-digest": Prop(max_length=40),
            "bwlimit": Prop(type="number", minimum=0),
        }, {"storage", "target-vmid", "target-volume"}), move_volume),
    }
    table["resize"] = (_cmd("resize", ["vmid", "disk", "size"], {
        "disk": Prop(optional=False, enum=["rootfs"] + [f"mp{i}" for i in range(MAX_MOUNT_POINTS)]),
        "size": Prop(optional=False, pattern=r"\+?\d+(\.\d+)?[KMGT]?"),
        "digest": Prop(max_length=40),
    }), resize)
    table["move_volume"] = table["move-volume"]
    return table


def main(argv: list[str]) -> int:
    table = _commands()
    if not argv or argv[0] not in table:
        name = argv[0] if argv else ""
        sys.stderr.write(f"ERROR: unknown command 'pct {name}'\n" if name else "ERROR: no command specified\n")
        sys.stderr.write("USAGE: pct <COMMAND> [ARGS] [OPTIONS]\n")
        return 255
    cmd, handler = table[argv[0]]
    paths.ensure_layout()
    try:
        params = cli_args.parse(cmd, argv[1:])
        return handler(params)
    except ParamError as err:
        if err.usage is None:
            err.usage = cmd.usage
        sys.stdout.flush()
        sys.stderr.write(err.render())
        return err.exit_code
    except PveError as err:
        sys.stdout.flush()
        sys.stderr.write(err.render())
        return err.exit_code
