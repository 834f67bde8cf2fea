"""The ProxmoxCT provider's pure helpers: a CT's outputs (observed view with secrets hidden, URLs,
MAC addresses), the template line it was made from, and the words for drift in logs and diffs.
No host access: every function here works on plain dicts a read back or a spec gave it.
"""

import re
from typing import Optional

from . import log
from .base import target_of
from .hosts import ctview, pct

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def has_unknown(value) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    return False


NOT_INPUTS = {"__provider", "vmid", "image_env", "observed", "raw_mounts", "hwaddrs", "ip", "status", "urls",
               "kept_on_holder", "healthy", "last_backup"}
# Outputs that can hold env values: the image's env is a secret output; `observed` shows only the
# stack's own and the image's values (see hide_secrets), so it stays readable for drift reports.
SECRET_OUTPUTS = ["image_env"]


def merged_env(spec: dict, image_env: dict) -> dict:
    return {**image_env, **(spec.get("env") or {}), **(spec.get("secret_env") or {})}


def hide_secrets(view: dict, spec: dict, image_env: Optional[dict] = None) -> dict:
    """The observed env as the state may hold it in plain text: a value is shown only when it is
    the stack's own (a plain input) or the image's (its public config); secret env values read
    `[secret]`, and anything else on the CT (set by hand, left by an older run) reads
    `[not from the stack or the image]` — still a difference from the spec, so drift is seen."""
    if not view.get("env"):
        return view
    secret_keys = set(spec.get("secret_env") or {})
    mine, image = spec.get("env") or {}, image_env or {}
    lines = []
    for line in view["env"].split("\n"):
        key, _, value = line.partition("=")
        if key in secret_keys:
            lines.append(f"{key}=[secret]")
        elif mine.get(key) == value or image.get(key) == value:
            lines.append(line)
        else:
            lines.append(f"{key}=[not from the stack or the image]")
    return {**view, "env": "\n".join(lines)}


def urls_of(spec: dict, ip: Optional[str]) -> list:
    if not ip:
        return []
    urls = []
    for port in spec.get("ports") or []:
        scheme = port.get("scheme")
        if scheme:
            urls.append(f"{scheme}://{ip}:{port['port']}")
    return urls


def outputs_of(spec: dict, vmid: int, readback: dict, image_env: dict, kept: Optional[dict] = None,
             healthy: Optional[bool] = None) -> dict:
    observed = hide_secrets(ctview.from_config(readback["config"], readback["status"], spec), spec, image_env)
    return {
        **spec,
        "kept_on_holder": kept,
        "vmid": vmid,
        "image_env": image_env,
        "observed": observed,
        "raw_mounts": {k: v for k, v in readback["config"].items() if re.fullmatch(r"mp\d+", k)},
        "hwaddrs": {k: hwaddr_of(v) for k, v in readback["config"].items() if re.fullmatch(r"net\d+", k)},
        "ip": readback["ip"],
        "status": readback["status"],
        "urls": urls_of(spec, readback["ip"]),
        "healthy": bool(healthy) and readback["status"] == "running",
    }


def log_drift(props: dict, before: dict, after: dict) -> None:
    """Python dynamic providers cannot show a refresh's detailed diff, so say it in the log."""
    changes = []
    for key in ctview.changed_keys(before, after):
        if key in ("env", "description"):
            changes.append(f"{key} changed")
        else:
            changes.append(f"{key}: {before.get(key, '(absent)')} -> {after.get(key, '(absent)')}")
    if changes:
        log.info(target_of(props).name, props["app"], f"drift on CT {props['vmid']}: " + "; ".join(changes))


def template_of(config: dict) -> Optional[str]:
    """The template a CT was made from, from the `template:` line homefleet writes in its description."""
    prefix = pct.template_line("")
    for line in config.get("description", "").split("\n"):
        if line.startswith(prefix):
            return line[len(prefix):]
    return None


def hwaddr_of(net_value: str) -> Optional[str]:
    match = re.search(r"hwaddr=([0-9A-Fa-f:]+)", net_value)
    return match.group(1) if match else None


_DRIFT_INPUTS = {"status": ("running",), "rootfs": ("rootfs_storage",), "disk": ("rootfs_size",)}


def inputs_of(key: str) -> tuple:
    """The inputs a drifted key of the CT (ctview's names) is put back from."""
    for pattern, inputs in ((r"net\d+", ("nets",)), (r"dev\d+", ("devices",)), (r"mp\d+", ("mounts", "volumes"))):
        if re.fullmatch(pattern, key):
            return inputs
    return _DRIFT_INPUTS.get(key, (key,))


# Input names -> the names a user writes in the stack file (as homefleet/preview_summary.py FIELD_NAMES).
_STACK_NAMES = {"rootfs_storage": "storage", "rootfs_size": "disk", "nets": "networks", "delete_data": "deleteData",
                "secret_env": "secrets", "ssh_public_keys": "sshPublicKeys"}


def stack_names(changed: list, news: dict) -> str:
    """'memory, mounts' for changed CT keys (`mp0`, `net0`, `rootfs`): the stack file's words, no reprs."""
    names = set()
    for key in changed:
        inputs = [i for i in inputs_of(key) if news.get(i)] or list(inputs_of(key))[:1]
        names.update(_STACK_NAMES.get(i, i) for i in inputs)
    return ", ".join(sorted(names))
