"""`lxc-info -n <name> [-s] [-p] [-i] [-H]`: state, init pid and IP addresses of a CT."""

from __future__ import annotations

import sys

from . import conf as conf_mod
from . import netinfo, paths, runstate

FLAGS = {"s": "state", "p": "pid", "i": "ips", "H": "no_humanize", "S": "stats", "c": "config"}


def _parse(argv: list[str]) -> tuple[str | None, set[str]]:
    name = None
    flags: set[str] = set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in ("-n", "--name"):
            if i >= len(argv):
                raise ValueError("option requires an argument -- 'n'")
            name = argv[i]
            i += 1
        elif arg.startswith("--name="):
            name = arg.split("=", 1)[1]
        elif arg.startswith("-n") and len(arg) > 2:
            name = arg[2:]
        elif arg in ("--state", "--pid", "--ips", "--no-humanize"):
            flags.add({"--state": "state", "--pid": "pid", "--ips": "ips",
                       "--no-humanize": "no_humanize"}[arg])
        elif arg.startswith("-") and not arg.startswith("--"):
            for ch in arg[1:]:
                if ch not in FLAGS:
                    raise ValueError(f"invalid option -- '{ch}'")
                flags.add(FLAGS[ch])
        else:
            raise ValueError(f"unrecognized argument '{arg}'")
    return name, flags


def main(argv: list[str]) -> int:
    try:
        name, flags = _parse(argv)
    except ValueError as err:
        sys.stderr.write(f"lxc-info: {err}\n")
        return 1
    if not name:
        sys.stderr.write("lxc-info: missing container name, use --name option\n")
        return 1
    if not name.isdigit() or not conf_mod.exists(int(name)):
        sys.stderr.write(f"{name} doesn't exist\n")
        return 1
    vmid = int(name)
    running = runstate.is_running(vmid)
    raw = "no_humanize" in flags
    selected = flags & {"state", "pid", "ips"}
    if not selected:
        selected = {"state", "pid", "ips"}
    out = []
    if "state" in selected:
        state = "RUNNING" if running else "STOPPED"
        out.append(state if raw else f"State:          {state}")
    if running:
        info = runstate.info(vmid) or {}
        if "pid" in selected:
            out.append(str(info.get("pid")) if raw else f"PID:            {info.get('pid')}")
        if "ips" in selected:
            conf = conf_mod.load(vmid)
            for key in sorted((k for k in conf.main.values if k.startswith("net") and k[3:].isdigit()),
                              key=lambda k: int(k[3:])):
                ip = netinfo.ipv4_of(conf, paths.node_name(), key)
                if ip:
                    out.append(ip[0] if raw else f"IP:             {ip[0]}")
    for line in out:
        sys.stdout.write(line + "\n")
    return 0
