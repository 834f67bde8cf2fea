"""One comparable shape for a CT, built from a spec or from `pct config` output.

Both sides become a flat {key: str} so diff and drift detection are a dict comparison
and the changed keys read well in a preview (`memory`, `mp1`, `env`...).
"""

import re

from . import pct, propstring

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)$")
_NET_IGNORED = {"hwaddr", "type", "host-managed"}


def size_gib(text: str) -> str:
    match = _SIZE.match(text or "")
    if not match:
        return text or ""
    number, unit = float(match.group(1)), match.group(2)
    factor = {"": 1 / 1024**3, "K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024}[unit]
    value = number * factor
    return str(int(value)) if value == int(value) else f"{value:g}"


def _net(value: str, want_hwaddr: bool) -> str:
    pairs = propstring.parse(value)
    keep = {k: v for k, v in pairs.items() if k not in _NET_IGNORED or (k == "hwaddr" and want_hwaddr)}
    return ",".join(f"{k}={v}" for k, v in sorted(keep.items()))


def _mount_from_config(value: str) -> str:
    pairs = propstring.parse(value, default_key="volume")
    volume = pairs.get("volume", "")
    ro = " ro" if pairs.get("ro") == "1" else ""
    if volume.startswith("/"):
        return f"bind {volume} -> {pairs.get('mp')}{ro}"
    storage = volume.split(":", 1)[0]
    return f"volume {storage}:{size_gib(pairs.get('size', ''))}G -> {pairs.get('mp')}{ro}"


def _dev(value: str) -> str:
    pairs = propstring.parse(value, default_key="path")
    return ",".join(f"{k}={v}" for k, v in sorted(pairs.items()))


def _features(value: str) -> str:
    pairs = propstring.parse(value or "")
    return ",".join(f"{k}={v}" for k, v in sorted(pairs.items()) if v == "1")


def _env(env: dict) -> str:
    return "\n".join(f"{k}={v}" for k, v in sorted(env.items()))


def from_spec(spec: dict, image_env: dict) -> dict:
    opts = pct.spec_options(spec)
    view = {
        key: opts[key]
        for key in ("hostname", "cores", "memory", "swap", "onboot", "unprivileged", "tags",
                    "description", "startup", "timezone", "nameserver", "searchdomain")
        if key in opts
    }
    view["features"] = _features(opts.get("features", ""))
    storage, _, size = opts["rootfs"].partition(":")
    view["rootfs"] = storage
    view["disk"] = f"{size}G"
    for key, value in opts.items():
        if key.startswith("net"):
            index = int(key[3:])
            nets = spec.get("nets") or [{}]
            view[key] = _net(value, want_hwaddr=bool(nets[index].get("hwaddr")))
        elif key.startswith("dev"):
            view[key] = _dev(value)
    for key, kind, item in pct.mount_slots(spec):
        ro = " ro" if item.get("read_only") else ""
        if kind == "volume":
            view[key] = f"volume {item['storage']}:{int(item['size'])}G -> {item['path']}{ro}"
        else:
            view[key] = f"bind {item['source']} -> {item['path']}{ro}"
    view["env"] = _env({**image_env, **(spec.get("env") or {})})
    if spec.get("entrypoint"):
        view["entrypoint"] = spec["entrypoint"]
    view["status"] = "running" if spec.get("running", True) else "stopped"
    return view


def from_config(conf: dict, status: str, spec: dict) -> dict:
    """The observed CT in the spec's shape; `spec` says which optional keys matter."""
    view = {}
    for key in ("hostname", "cores", "memory", "swap", "tags", "description", "startup",
                "timezone", "nameserver", "searchdomain"):
        if key in conf:
            view[key] = conf[key].rstrip("\n") if key == "description" else conf[key]
    view["onboot"] = conf.get("onboot", "0")
    view["unprivileged"] = conf.get("unprivileged", "0")
    view["features"] = _features(conf.get("features", ""))
    rootfs = propstring.parse(conf.get("rootfs", ""), default_key="volume")
    view["rootfs"] = rootfs.get("volume", "").split(":", 1)[0]
    view["disk"] = f"{size_gib(rootfs.get('size', ''))}G"
    nets = spec.get("nets") or [{}]
    for key, value in conf.items():
        if re.fullmatch(r"net\d+", key):
            index = int(key[3:])
            want_hw = index < len(nets) and bool(nets[index].get("hwaddr"))
            view[key] = _net(value, want_hwaddr=want_hw)
        elif re.fullmatch(r"mp\d+", key):
            view[key] = _mount_from_config(value)
        elif re.fullmatch(r"dev\d+", key):
            view[key] = _dev(value)
    view["env"] = _env(pct.env_dict(conf.get("env", [])))
    if spec.get("entrypoint"):
        view["entrypoint"] = conf.get("entrypoint", "")
    view["status"] = status
    return view


_VOLUME_VIEW = re.compile(r"^volume (?P<storage>\S+):(?P<size>[\d.]+)G -> (?P<rest>.*)$")


def grown_volume(old: str, new: str):
    """The new size in GiB when two volume views differ only by a larger size, else None."""
    before, after = _VOLUME_VIEW.match(old or ""), _VOLUME_VIEW.match(new or "")
    if not before or not after:
        return None
    if (before["storage"], before["rest"]) != (after["storage"], after["rest"]):
        return None
    return after["size"] if float(after["size"]) > float(before["size"]) else None


def changed_keys(old: dict, new: dict) -> list:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
