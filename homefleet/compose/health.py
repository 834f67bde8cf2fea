"""A compose service's `healthcheck:` as the ProxmoxCT `health` input (providers/health.py).

The compose spec (compose-spec `05-services.md`, healthcheck): `test` is `["CMD", args...]`,
`["CMD-SHELL", "command"]` or a string (= CMD-SHELL), `["NONE"]` or `disable: true` turns the
image's check off; `interval`, `timeout`, `start_period` are durations (`1m30s`, `10s`,
`500ms`), `retries` a count. A healthcheck without `test` keeps the image's own HEALTHCHECK,
which an OCI template does not carry to PVE: the default check applies then.
"""

from __future__ import annotations

import math
import re
from typing import Optional

_UNIT = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")


def seconds(value, where: str) -> int:
    """A compose duration -> whole seconds (rounded up)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return math.ceil(value)
    text = str(value).strip()
    if not text or _PART.sub("", text):
        raise ValueError(f"{where}: {value!r} is not a duration; write e.g. 30s, 1m30s or 500ms")
    return math.ceil(sum(float(n) * _UNIT[u] for n, u in _PART.findall(text)))


def health_input(check: Optional[dict], where: str) -> Optional[dict]:
    """None (no healthcheck, or one without `test`), {"kind": "none"} (disabled) or the exec check."""
    if not check:
        return None
    test = check.get("test")
    if check.get("disable") is True or test == "NONE" or test == ["NONE"]:
        return {"kind": "none"}
    if test is None:
        return None
    if isinstance(test, str):
        argv = ["/bin/sh", "-c", test]
    elif isinstance(test, list) and test and test[0] == "CMD" and len(test) > 1:
        argv = [str(t) for t in test[1:]]
    elif isinstance(test, list) and test and test[0] == "CMD-SHELL" and len(test) > 1:
        argv = ["/bin/sh", "-c", " ".join(str(t) for t in test[1:])]
    else:
        raise ValueError(f"{where}.test: {test!r} is not a health check; write [CMD, prog, args...], "
                         "[CMD-SHELL, \"command\"] or a command string")
    retries = check.get("retries", 3)
    if isinstance(retries, bool) or not str(retries).isdigit():
        raise ValueError(f"{where}.retries: {retries!r} is not a count; write e.g. 3")
    return {"kind": "exec", "test": argv,
            "interval": seconds(check.get("interval", "30s"), f"{where}.interval"),
            "timeout": seconds(check.get("timeout", "30s"), f"{where}.timeout"),
            "retries": int(retries),
            "start_period": seconds(check.get("start_period", "0s"), f"{where}.start_period")}
