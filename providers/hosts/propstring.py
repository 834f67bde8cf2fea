"""PVE property strings: `name=eth0,bridge=vmbr0,ip=dhcp` and `local-zfs:8,mp=/data`."""

from typing import Optional


def parse(value: str, default_key: Optional[str] = None) -> dict:
    """Split a property string; a leading item without `=` belongs to `default_key`."""
    result: dict = {}
    for index, item in enumerate(value.split(",")):
        if not item:
            continue
        if "=" in item:
            key, _, val = item.partition("=")
            result[key] = val
        elif index == 0 and default_key:
            result[default_key] = item
        else:
            result[item] = "1"
    return result


def join(pairs: dict, first_bare: Optional[str] = None) -> str:
    """Inverse of parse; `first_bare` is written first without its key (e.g. the volume)."""
    items = []
    if first_bare is not None and first_bare in pairs:
        items.append(str(pairs[first_bare]))
    for key, val in pairs.items():
        if key == first_bare or val is None:
            continue
        items.append(f"{key}={val}")
    return ",".join(items)
