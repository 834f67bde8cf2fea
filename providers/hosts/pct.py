"""`pct`: builders for create/set/start/stop/destroy and parsers for config/status/list.

A CT spec is the plain dict the ProxmoxCT provider receives (see providers/proxmox_ct.py).
`spec_options` turns it into the `pct` options PVE stores, normalised the way `pct config`
prints them, so the same shape serves create, diff and drift detection.
"""

import re
import urllib.parse
from typing import Optional

from . import propstring

OWNER_TAG = "homefleet"
MARKER_PREFIX = "managed-by: homefleet"

# Options `pct set` applies to a running CT at once or hot-plugs (proxmox-pct.md §3).
LIVE_OPTIONS = {"description", "onboot", "startup", "protection", "hostname", "cores", "tags",
                "cpulimit", "cpuunits", "memory", "swap"}
_NET_KEY = re.compile(r"^net\d+$")
_MP_KEY = re.compile(r"^mp\d+$")
_DEV_KEY = re.compile(r"^dev\d+$")


# ---------- the CT spec -> pct options ----------

def marker_line(stack: str, app: str) -> str:
    return f"{MARKER_PREFIX} stack={stack} app={app}"


def holder_line(stack: str, app: str) -> str:
    return f"{MARKER_PREFIX} stack={stack} app={app} role=data"


HOLDER_TAG = f"{OWNER_TAG}-data"
HOLDER_NOTE = "holds the data volumes of this app while its CT is replaced or after it was destroyed"
HOLDER_ROOTFS_GIB = 1
_LABEL_BAD = re.compile(r"[^a-z0-9-]+")


def holder_hostname(app: str) -> str:
    """`<app>-data` as one valid DNS label (at most 63 characters, no leading or trailing '-')."""
    base = _LABEL_BAD.sub("-", app.lower()).strip("-")[:58].strip("-") or "app"
    return f"{base}-data"


def holder_options(spec: dict) -> dict:
    """A stopped, minimal CT that only owns an app's data volumes between two CTs.

    Made from homefleet's own tiny holder archive (providers/hosts/holder_image.py), never from
    the app's image: PVE extracts the whole image into the rootfs, so a big image would not fit
    a small rootfs (ENOSPC). Always unprivileged: PVE refuses a privileged CT from an OCI archive,
    and `pct move-volume` does not care about the privilege of either CT.
    """
    return {
        "hostname": holder_hostname(spec["app"]),
        "memory": "16",
        "swap": "0",
        "rootfs": f"{spec['rootfs_storage']}:{HOLDER_ROOTFS_GIB}",
        "unprivileged": "1",
        "ostype": "unmanaged",
        "tags": f"{OWNER_TAG};{HOLDER_TAG}",
        "description": holder_line(spec["stack"], spec["app"]) + "\n" + HOLDER_NOTE,
    }


def holder_of(conf: dict) -> Optional[tuple]:
    """(stack, app) of a data holder homefleet made, or None.

    Exact: the description is our two holder lines and nothing else, both tags are there, and
    the CT has nothing a holder never has (network, devices, bind mounts). A CT whose
    description merely contains the holder line (a look-alike) is not a holder.
    """
    lines = conf.get("description", "").rstrip("\n").split("\n")  # PVE ends a stored description with a newline
    match = re.fullmatch(rf"{re.escape(MARKER_PREFIX)} stack=(\S+) app=(\S+) role=data", lines[0])
    if not match or lines[1:] != [HOLDER_NOTE]:
        return None
    tags = conf.get("tags", "").split(";")
    if OWNER_TAG not in tags or HOLDER_TAG not in tags:
        return None
    for key, value in conf.items():
        if _NET_KEY.match(key) or _DEV_KEY.match(key):
            return None
        if _MP_KEY.match(key) and value.split(",", 1)[0].startswith("/"):
            return None
    return match.group(1), match.group(2)


def mount_path(value: str) -> Optional[str]:
    """The container path of an `mpN` value (`VOLUME,mp=/path,...`)."""
    for part in value.split(",")[1:]:
        key, _, val = part.partition("=")
        if key == "mp":
            return val
    return None


def held_volumes(conf: dict) -> dict:
    """{mpN or unusedN: container path (None for unusedN)} of the storage volumes a CT holds."""
    held = {}
    for key, value in conf.items():
        if _MP_KEY.match(key) and not value.split(",", 1)[0].startswith("/"):
            held[key] = mount_path(value)
        elif re.fullmatch(r"unused\d+", key):
            held[key] = None
    return held


def description_text(spec: dict) -> str:
    lines = [marker_line(spec["stack"], spec["app"])]
    if spec.get("template"):
        lines.append(template_line(spec["template"]))
    if spec.get("description"):
        lines.append(spec["description"])
    return "\n".join(lines)


def tags_value(tags) -> str:
    """PVE stores tags lowercased, deduplicated, sorted and joined with ';'."""
    return ";".join(sorted({t.lower() for t in list(tags or []) + [OWNER_TAG]}))


def net_value(net: dict, oci: bool) -> str:
    pairs = {"name": net.get("name", "eth0")}
    extra = {
        "bridge": net.get("bridge"),
        "firewall": _flag(net.get("firewall")),
        "gw": net.get("gw"),
        "host-managed": "1" if oci and net.get("host_managed", True) else None,
        "hwaddr": net.get("hwaddr").upper() if net.get("hwaddr") else None,
        "ip": net.get("ip", "dhcp"),
        "ip6": net.get("ip6"),
        "mtu": net.get("mtu"),
        "tag": net.get("tag"),
    }
    pairs.update({k: str(v) for k, v in sorted(extra.items()) if v is not None})
    return propstring.join(pairs)


def size_text(gib) -> str:
    return f"{int(gib)}G"


def backup_flag(vol: dict) -> str:
    """`backup=1` unless the stack says `backup: false`: vzdump takes a volume mount point only
    with the flag (pve-container Config.pm mountpoint_backup_enabled), and homefleet's backup
    before an upgrade must hold the app's data."""
    return "0" if vol.get("backup") is False else "1"


def volume_create_value(vol: dict) -> str:
    """`STORAGE:SIZE,mp=/path,backup=1` allocates a new volume of SIZE GiB."""
    pairs = {"volume": f"{vol['storage']}:{int(vol['size'])}", "mp": vol["path"], "backup": backup_flag(vol)}
    return propstring.join(pairs, first_bare="volume")


def with_keepattrs(options: dict, spec: dict) -> dict:
    """`options` with `keepattrs=1` on each new volume: PVE then gives the volume's top the owner
    and mode of the image's directory at that path at every mount, so an image whose USER is
    not root can write its volume (pve-container >= 6.1.2; `lxc-pve-prestart-hook` ->
    `LXC.pm` `mountpoint_insert_staged`). Without it a new volume is the CT root's, mode 0755."""
    res = dict(options)
    for key, kind, _item in mount_slots(spec):
        if kind == "volume" and key in res:
            res[key] = res[key] + ",keepattrs=1"
    return res


def bind_value(mount: dict) -> str:
    pairs = {"volume": mount["source"], "mp": mount["path"]}
    if mount.get("read_only"):
        pairs["ro"] = "1"
    return propstring.join(pairs, first_bare="volume")


def dev_value(dev: dict) -> str:
    pairs = {"path": dev["path"]}
    for key in ("gid", "mode", "uid"):
        if dev.get(key) is not None:
            pairs[key] = str(dev[key])
    return propstring.join(pairs, first_bare="path")


def features_value(features: dict) -> Optional[str]:
    on = {k: "1" for k in sorted(features or {}) if features[k]}
    return propstring.join(on) if on else None


def _flag(value) -> Optional[str]:
    if value is None:
        return None
    return "1" if value else "0"


def mount_slots(spec: dict) -> list:
    """(mpN, kind, item) for volumes first, then bind mounts, in input order."""
    slots = []
    for vol in spec.get("volumes") or []:
        slots.append((f"mp{len(slots)}", "volume", vol))
    for mount in spec.get("mounts") or []:
        slots.append((f"mp{len(slots)}", "bind", mount))
    return slots


def spec_options(spec: dict) -> dict:
    """Every pct option the spec sets, as create arguments (volumes as `STORAGE:SIZE`)."""
    oci = spec.get("template_kind", "oci") == "oci"
    opts = {
        "hostname": spec["hostname"],
        "cores": str(spec.get("cores", 1)),
        "memory": str(spec.get("memory", 512)),
        "swap": str(spec.get("swap", 512)),
        "rootfs": f"{spec['rootfs_storage']}:{int(spec.get('rootfs_size', 4))}",
        "unprivileged": "1" if spec.get("unprivileged", True) else "0",
        "onboot": "1" if spec.get("onboot") else "0",
        "tags": tags_value(spec.get("tags")),
        "description": description_text(spec),
    }
    if oci:
        opts["ostype"] = "unmanaged"
    for index, net in enumerate(spec.get("nets") or [{"bridge": "vmbr0"}]):
        opts[f"net{index}"] = net_value({"name": f"eth{index}", **net}, oci)
    for key, kind, item in mount_slots(spec):
        opts[key] = volume_create_value(item) if kind == "volume" else bind_value(item)
    for index, dev in enumerate(spec.get("devices") or []):
        opts[f"dev{index}"] = dev_value(dev)
    optional = {
        "features": features_value(spec.get("features")),
        "startup": spec.get("startup"),
        "timezone": spec.get("timezone"),
        "nameserver": spec.get("nameserver"),
        "searchdomain": spec.get("searchdomain"),
        "arch": spec.get("arch"),
        "pool": spec.get("pool"),  # only set when a recreate carries the old CT's pool over
    }
    opts.update({k: v for k, v in optional.items() if v})
    return opts


# ---------- argv builders ----------

def _option_args(options: dict) -> list:
    args = []
    for key, value in options.items():
        args += [f"--{key}", str(value)]
    return args


def create_argv(vmid: int, template: str, options: dict) -> list:
    return ["pct", "create", str(vmid), template, *_option_args(options)]


def set_argv(vmid: int, options: dict, delete: Optional[list] = None) -> list:
    argv = ["pct", "set", str(vmid), *_option_args(options)]
    if delete:
        argv += ["--delete", ",".join(delete)]
    return argv


def start_argv(vmid: int) -> list:
    return ["pct", "start", str(vmid)]


def shutdown_argv(vmid: int, timeout: int = 60) -> list:
    return ["pct", "shutdown", str(vmid), "--timeout", str(timeout), "--forceStop", "1"]


def stop_argv(vmid: int) -> list:
    return ["pct", "stop", str(vmid)]


def unlock_argv(vmid: int) -> list:
    """`pct unlock`: drops a `lock:` an interrupted task left (pve-container CLI/pct.pm unlock)."""
    return ["pct", "unlock", str(vmid)]


def destroy_argv(vmid: int) -> list:
    return ["pct", "destroy", str(vmid), "--purge", "1"]


def config_argv(vmid: int) -> list:
    return ["pct", "config", str(vmid)]


def status_argv(vmid: int) -> list:
    return ["pct", "status", str(vmid)]


def pending_argv(vmid: int) -> list:
    return ["pct", "pending", str(vmid)]


def resize_argv(vmid: int, disk: str, gib) -> list:
    return ["pct", "resize", str(vmid), disk, f"{gib}G"]


def stored_size(gib) -> str:
    """A size in GiB as PVE prints it in `pct config` (JSONSchema format_size: the largest
    unit that divides it): 5 -> 5G, 2.5 -> 2560M."""
    size = int(round(float(gib) * 1024 ** 3))
    for unit, factor in (("T", 1024 ** 4), ("G", 1024 ** 3), ("M", 1024 ** 2), ("K", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def move_volume_argv(vmid: int, volume: str, target_vmid: int, target_volume: str) -> list:
    return ["pct", "move-volume", str(vmid), volume, "--target-vmid", str(target_vmid),
            "--target-volume", target_volume]


def ip_argv(vmid: int) -> list:
    return ["lxc-info", "-n", str(vmid), "-iH"]


def nextid_argv() -> list:
    return ["pvesh", "get", "/cluster/nextid"]


# ---------- parsers ----------

def decode_description(value: str) -> str:
    return urllib.parse.unquote(value)


def parse_config(text: str) -> dict:
    """`pct config` output -> {key: value}; env as a list, lxc.* as a list of pairs."""
    conf: dict = {"lxc": []}
    # `\n` only: str.splitlines() also splits on U+2028, U+0085 and others, which a value
    # (an env entry) may hold, and would then forge a line of its own.
    for line in text.split("\n"):
        if not line.strip():
            continue
        key, sep, value = line.partition(": ")
        if not sep:
            key, value = line.rstrip(":"), ""
        if key.startswith("lxc."):
            conf["lxc"].append((key, value))
        elif key == "env":
            conf["env"] = [v for v in value.split("\x00") if v]
        elif key == "description":
            conf["description"] = decode_description(value)
        else:
            conf[key] = value
    return conf


def parse_status(text: str) -> str:
    match = re.search(r"^status:\s*(\S+)", text, re.M)
    if not match:
        raise ValueError(f"unexpected `pct status` output: {text[:200]!r}")
    return match.group(1)


def parse_list(text: str) -> list:
    rows = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if not parts:
            continue
        vmid, status = parts[0], parts[1]
        name = parts[-1] if len(parts) >= 3 else ""
        lock = parts[2] if len(parts) == 4 else ""
        rows.append({"vmid": int(vmid), "status": status, "lock": lock, "name": name})
    return rows


def parse_pending(text: str) -> dict:
    """`pct pending` -> {key: {'cur':..., 'new':..., 'del': bool}}."""
    result: dict = {}
    for line in text.split("\n"):  # not splitlines(): an env value may hold U+2028 or U+0085
        match = re.match(r"^(cur|new|del) ([^:]+): ?(.*)$", line)
        if not match:
            continue
        kind, key, value = match.groups()
        entry = result.setdefault(key, {})
        if kind == "del":
            entry["del"] = True
        else:
            entry[kind] = value
    return result


def pending_changes(pending: dict) -> list:
    """Keys whose change waits for a restart."""
    return sorted(k for k, v in pending.items() if v.get("del") or ("new" in v and v.get("new") != v.get("cur")))


def owner_of(conf: dict) -> Optional[tuple]:
    """(stack, app) from our marker line, or None if homefleet did not create this CT.

    The marker is the description's first line (`description_text` writes it there); a
    marker-like line further down is a user's text, not ours.
    """
    first = conf.get("description", "").split("\n", 1)[0]
    match = re.fullmatch(rf"{re.escape(MARKER_PREFIX)} stack=(\S+) app=(\S+)", first)
    if not match or OWNER_TAG not in conf.get("tags", "").split(";"):
        return None
    return match.group(1), match.group(2)


def env_dict(entries: list) -> dict:
    env = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        env[key] = value
    return env


def encode_text(text: str) -> str:
    """PVE's encode_text: how a description line is stored in the conf file and printed."""
    out = []
    for byte in text.encode():
        if 0x20 <= byte <= 0x24 or 0x26 <= byte <= 0x39 or 0x3B <= byte <= 0x7E:
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def template_line(volid: str) -> str:
    return f"template: {volid}"
