"""Every homefleet CT on one Proxmox host in one SSH exec: config, status and address.

`pulumi refresh` reads each CT. Asking the host once for all of them turns N round trips
into one, and N `pct status` starts into one `pvesh` list. The script:

1. `pvesh get /nodes/<node>/lxc --output-format json`: every CT on the node with its
   status, in one process (the node name is PVE's: `uname -n` up to the first dot);
2. for each `/etc/pve/lxc/<vmid>.conf` that mentions `homefleet` (our tag and marker are
   in every CT we create; the rest are skipped without starting `pct`) or is locked `create`
   (a restore cut half-way leaves a bare `lock: create`: providers/upgrade.py half_restored):
   `pct config` and `lxc-info -iH`, under per-CT section markers.

The config text is what `pct config` prints, parsed by `pct.parse_config`, so a CT read
here has exactly the shape `ctops.parse_readback` gives for a single CT.
"""

import json
import re
from dataclasses import dataclass, field
from . import pct
from .script import SECTION, q, section, sh

_MARK = re.compile(r"^@@homefleet:section:(config|failed|ip):(\d+)@@$")
_GONE = "does not exist"


def read_all_script() -> list:
    mark = "printf " + q([SECTION.format("%s:%s") + r"\n"]) + " {} \"$vmid\""
    return sh([
        "set -u",
        "node=$(uname -n)",
        "node=${node%%.*}",
        section("list"),
        q(["pvesh", "get"]) + ' "/nodes/$node/lxc" ' + q(["--output-format", "json"]) + " || exit $?",
        "for conf in /etc/pve/lxc/*.conf; do",
        "  vmid=${conf##*/}",
        "  vmid=${vmid%.conf}",
        "  case $vmid in ''|*[!0-9]*) continue ;; esac",
        "  " + q(["grep", "-qsE", "homefleet|^lock: create$"]) + ' "$conf" || continue',
        "  " + mark.format("config"),
        "  " + q(["pct", "config"]) + ' "$vmid" </dev/null || ' + mark.format("failed"),
        "  " + mark.format("ip"),
        "  " + q(["lxc-info", "-n"]) + ' "$vmid" -iH 2>/dev/null || true',
        "done",
    ])


@dataclass
class Snapshot:
    """What one read found: `listed` {vmid: status} for every CT on the node, `cts` the
    readbacks of the CTs that mention homefleet, `failed` CTs whose `pct config` failed."""

    listed: dict = field(default_factory=dict)
    cts: dict = field(default_factory=dict)
    failed: set = field(default_factory=set)
    stderr: str = ""

    def lookup(self, vmid: int) -> tuple:
        """('found', readback) | ('gone', None) | ('unsure', None).

        'gone': the node does not list the CT, or it holds no homefleet mark (so it is not
        ours), or `pct config` said it does not exist. 'unsure': the list and the configs
        disagree (a CT created or destroyed while the script ran) or `pct config` failed
        for another reason; the caller reads that CT on its own.
        """
        vmid = int(vmid)
        if vmid in self.failed:
            gone = re.search(rf"\b{vmid}\.conf' {_GONE}", self.stderr)
            return ("gone", None) if gone else ("unsure", None)
        if vmid in self.cts:
            if vmid not in self.listed:
                return "unsure", None
            readback = dict(self.cts[vmid])
            readback["status"] = self.listed[vmid]
            return "found", readback
        return "gone", None


def parse(stdout: str, stderr: str = "") -> Snapshot:
    snap = Snapshot(stderr=stderr)
    blocks: dict = {}
    current = None
    list_lines: list = []
    in_list = False
    for line in stdout.split("\n"):
        if line == SECTION.format("list"):
            in_list, current = True, None
            continue
        match = _MARK.match(line)
        if match:
            in_list = False
            kind, vmid = match.group(1), int(match.group(2))
            if kind == "failed":
                snap.failed.add(vmid)
                current = None
                continue
            current = blocks.setdefault(vmid, {"config": [], "ip": []})[kind]
            continue
        if in_list:
            list_lines.append(line)
        elif current is not None:
            current.append(line)
    snap.listed = _parse_list("\n".join(list_lines))
    for vmid, block in blocks.items():
        if vmid in snap.failed:
            continue
        ips = [line.strip() for line in block["ip"] if line.strip()]
        snap.cts[vmid] = {
            "config": pct.parse_config("\n".join(block["config"])),
            "status": None,
            "ip": ips[0] if ips else None,
            "created": False,
            "holder": None,
            "restarted": False,
            "image_env": [],
            "task_output": "",
        }
    return snap


def _parse_list(text: str) -> dict:
    """`pvesh get /nodes/N/lxc --output-format json` -> {vmid: status}."""
    text = text.strip()
    if not text:
        raise ValueError("`pvesh get /nodes/<node>/lxc` printed nothing")
    entries = json.loads(text)
    if not isinstance(entries, list):
        raise ValueError(f"unexpected `pvesh get /nodes/<node>/lxc` output: {text[:200]!r}")
    listed: dict = {}
    for entry in entries:
        status = entry.get("status")
        listed[int(entry["vmid"])] = status if isinstance(status, str) and status else None
    return listed
