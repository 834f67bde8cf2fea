"""`pvesh get <path> [--output-format text|json|json-pretty] [params]` for a few API paths:

* `/cluster/nextid [--vmid N]`
* `/nodes/<node>/storage/<storage>/content [--content T] [--vmid N]`
* `/nodes/<node>/lxc` (vmlist), `/nodes/<node>/lxc/<vmid>/status/current`,
  `/nodes/<node>/lxc/<vmid>/config`, `/nodes/<node>/lxc/<vmid>/interfaces`
"""

from __future__ import annotations

import json
import re
import sys

from . import conf as conf_mod
from . import netinfo, paths, runstate, storage
from .errors import ParamError, PveError
from .schema import split_list

OUTPUT_FORMATS = ["text", "json", "json-pretty", "yaml"]


def _parse_args(argv: list[str]) -> tuple[str, str, dict[str, str]]:
    if len(argv) < 2:
        raise PveError("400 not enough arguments\npvesh <get|set|create|delete> <api_path> [OPTIONS]")
    verb, path = argv[0], argv[1]
    opts: dict[str, str] = {}
    i = 2
    while i < len(argv):
        m = re.fullmatch(r"--?([\w\-]+)(?:=(.*))?", argv[i], re.S)
        if not m:
            raise PveError("400 too many arguments")
        name, value = m.group(1), m.group(2)
        i += 1
        if value is None:
            if i >= len(argv):
                raise PveError(f"Option {name} requires an argument\n400 unable to parse option")
            value = argv[i]
            i += 1
        opts[name] = value
    return verb, path, opts


def _range() -> tuple[int, int]:
    lower, upper = 100, 1_000_000
    dc = paths.datacenter_cfg()
    if dc.exists():
        for line in dc.read_text().splitlines():
            m = re.match(r"next-id:\s*(.*)", line)
            if m:
                for part in split_list(m.group(1)):
                    key, _, val = part.partition("=")
                    if key == "lower":
                        lower = int(val)
                    elif key == "upper":
                        upper = int(val)
    return lower, upper


def nextid(opts: dict[str, str]):
    used = conf_mod.cluster_vmids()
    if "vmid" in opts:
        vmid = int(opts["vmid"])
        if vmid in used:
            raise ParamError({"vmid": f"VM {vmid} already exists"})
        return vmid
    lower, upper = _range()
    for vmid in range(lower, upper):
        if vmid not in used:
            return vmid
    raise PveError(f"unable to get any free VMID in range [{lower}, {upper}]")


def _vm_entry(vmid: int) -> dict:
    from .pct import vmstatus
    conf = conf_mod.load(vmid)
    return vmstatus(vmid, conf)


def interfaces(vmid: int):
    conf = conf_mod.load(vmid)
    if not runstate.is_running(vmid):
        return None
    res = [{"name": "lo", "hwaddr": "00:00:00:00:00:00", "hardware-address": "00:00:00:00:00:00",
            "inet": "127.0.0.1/8", "inet6": "::1/128",
            "ip-addresses": [
                {"ip-address": "127.0.0.1", "ip-address-type": "inet", "prefix": 8},
                {"ip-address": "::1", "ip-address-type": "inet6", "prefix": 128}]}]
    node = paths.node_name()
    for key in sorted((k for k in conf.main.values if re.fullmatch(r"net\d+", k)), key=lambda k: int(k[3:])):
        net = netinfo.net_config(conf.main.values, key)
        if not net or net.get("link_down") == "1":
            continue
        hwaddr = (net.get("hwaddr") or "").lower()
        entry = {"name": net.get("name", key), "hwaddr": hwaddr, "hardware-address": hwaddr,
                 "ip-addresses": []}
        ip4 = netinfo.ipv4_of(conf, node, key)
        if ip4:
            entry["inet"] = f"{ip4[0]}/{ip4[1]}"
            entry["ip-addresses"].append({"ip-address": ip4[0], "ip-address-type": "inet",
                                          "prefix": ip4[1]})
        if hwaddr:
            ll = netinfo.link_local6(hwaddr)
            entry["inet6"] = f"{ll}/64"
            entry["ip-addresses"].append({"ip-address": ll, "ip-address-type": "inet6", "prefix": 64})
        res.append(entry)
    return res


def ct_config(vmid: int, current: bool) -> dict:
    conf = conf_mod.load(vmid)
    values = dict(conf.main.values) if current else conf.merged()
    res: dict = {}
    for key, value in values.items():
        res[key] = int(value) if re.fullmatch(r"\d+", value) and key not in ("env", "description") \
            and not key.startswith(("net", "mp", "dev", "unused")) and key != "rootfs" else value
    if conf.main.lxc:
        res["lxc"] = [[k, v] for k, v in conf.main.lxc]
    res["digest"] = conf.digest
    return res


def storage_content(node: str, storeid: str, opts: dict[str, str]) -> list:
    """pve-storage API2/Storage/Content.pm index: Storage.pm volume_list (content types the
    storage allows, sorted by volid), with `notes` and `protected` for backups."""
    if node != paths.node_name():
        raise PveError(f"hostname lookup '{node}' failed - failed to get address info for: "
                       f"{node}: Name or service not known")
    scfg = storage.check_enabled(storeid)
    content = opts.get("content")
    vmid = int(opts["vmid"]) if opts.get("vmid") else None
    items = sorted(scfg.list_volumes(), key=lambda i: i["volid"].lower())
    if content:
        items = [i for i in items if i["content"] == content and content in scfg.content]
    if vmid is not None:
        items = [i for i in items if i.get("vmid") == vmid]
    return items


def get(path: str, opts: dict[str, str]):
    path = "/" + path.strip("/")
    if path == "/cluster/nextid":
        return nextid(opts)
    m = re.fullmatch(r"/nodes/([^/]+)/storage/([^/]+)/content", path)
    if m:
        return storage_content(m.group(1), m.group(2), opts)
    m = re.fullmatch(r"/nodes/([^/]+)/lxc(?:/(\d+)(/.*)?)?", path)
    if m:
        node, vmid, rest = m.group(1), m.group(2), m.group(3) or ""
        if node != paths.node_name():
            raise PveError(f"hostname lookup '{node}' failed - failed to get address info for: "
                           f"{node}: Name or service not known")
        if vmid is None:
            return [_vm_entry(v) for v in conf_mod.list_vmids()]
        vmid_i = int(vmid)
        if rest == "/interfaces":
            return interfaces(vmid_i)
        if rest == "/status/current":
            return _vm_entry(vmid_i)
        if rest == "/config":
            return ct_config(vmid_i, opts.get("current") in ("1", "yes", "true"))
        if rest == "/pending" or rest == "":
            pass
    raise PveError(f"No 'get' handler defined for '{path}'")


def _print(result, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")
    elif fmt == "json-pretty":
        sys.stdout.write(json.dumps(result, indent=4, sort_keys=True) + "\n")
    elif result is None:
        return
    elif isinstance(result, (str, int, float)):
        sys.stdout.write(f"{result}\n")
    else:
        sys.stdout.write(json.dumps(result, indent=4, sort_keys=True) + "\n")


def main(argv: list[str]) -> int:
    paths.ensure_layout()
    try:
        verb, path, opts = _parse_args(argv)
        fmt = opts.pop("output-format", "text")
        if fmt not in OUTPUT_FORMATS:
            raise ParamError({"output-format": f"value '{fmt}' does not have a value in the "
                              f"enumeration '{', '.join(OUTPUT_FORMATS)}'"})
        opts.pop("noproxy", None)
        opts.pop("quiet", None)
        if verb != "get":
            raise PveError(f"No '{verb}' handler defined for '/{path.strip('/')}'")
        _print(get(path, opts), fmt)
        return 0
    except ParamError as err:
        if len(argv) >= 2:
            err.usage = f"pvesh {argv[0]} {argv[1]} [OPTIONS] [FORMAT_OPTIONS]"
        sys.stderr.write(err.render())
        return err.exit_code
    except PveError as err:
        sys.stderr.write(err.render())
        return err.exit_code
