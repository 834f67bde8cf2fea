"""Sizes of a service's CT: `cpus`, `mem_limit`, `memswap_limit`, `deploy.resources.limits`, x-homefleet."""

from __future__ import annotations

import math
import re

from ..sizes import to_gib, to_mib
from .model import Service

_MEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$", re.I)
_MEM_FACTOR = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def _bytes_mib(value) -> int:
    """Compose memory (bytes as a number, or '512m', '1.5g') -> MiB, rounded up."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = _MEM.match(str(value))
        if not match:
            raise ValueError(value)
        number = float(match.group(1)) * _MEM_FACTOR[match.group(2).lower()]
    return max(16, math.ceil(number / 1024**2))


def limits_of(service: Service) -> dict:
    """cores / memory / swap from cpus, mem_limit, memswap_limit and deploy.resources.limits."""
    options = service.options
    limits = ((options.get("deploy") or {}).get("resources") or {}).get("limits") or {} \
        if isinstance(options.get("deploy"), dict) else {}
    out: dict = {}
    cpus = options.get("cpus", limits.get("cpus") if isinstance(limits, dict) else None)
    if cpus is not None:
        try:
            out["cores"] = max(1, math.ceil(float(cpus)))
        except (TypeError, ValueError):
            out["problem"] = ("cpus", f"must be a number of CPUs (got {cpus!r})")
    memory = options.get("mem_limit", limits.get("memory") if isinstance(limits, dict) else None)
    if memory is not None:
        try:
            out["memory"] = _bytes_mib(memory)
        except ValueError:
            out["problem"] = ("mem_limit", f"is not a memory size (got {memory!r})")
    swap_total = options.get("memswap_limit")
    if swap_total is not None and "memory" in out:
        try:
            total = -1 if str(swap_total) == "-1" else _bytes_mib(swap_total)
            out["swap"] = 0 if total == -1 else max(0, total - out["memory"])
        except ValueError:
            out["problem"] = ("memswap_limit", f"is not a memory size (got {swap_total!r})")
    return out


def size_of(key: str, value) -> int:
    if isinstance(value, bool):
        raise ValueError(f"must be a number (got {value!r})")
    if key == "cores":
        if not isinstance(value, int) or not 1 <= value <= 8192:
            raise ValueError(f"must be a whole number of cores from 1 to 8192 (got {value!r})")
        return value
    if key == "disk":
        gib = to_gib(value)
        if gib < 1:
            raise ValueError(f"must be at least 1 GiB (got {value!r})")
        return gib
    mib = to_mib(value, "M")
    if key == "memory" and mib < 16:
        raise ValueError(f"must be at least 16 MiB (got {value!r})")
    return mib
