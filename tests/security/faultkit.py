"""Faults inside a host script, and what a host holds for one app.

The simulator's faults.json acts on a whole SSH exec (before it runs). A provider sends
multi-step operations as one `sh` script, so a step *inside* it failing needs the tool itself
to fail: `wrap_tools()` puts a small wrapper in front of `pct`, `perl` and `skopeo` in the
fleet's bin folder that fails when the call matches a rule in `$SIM_STATE/tool-faults`
(a shell glob over "TOOL ARGS...", an exit code, a message). A `skopeo copy` failing with
"no space left on device" first writes part of the archive, as a full storage does.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from providers.hosts import pct
from sim.testing import SimHost, ssh_run

WRAPPER = """#!/bin/sh
rules="$SIM_STATE/tool-faults"
if [ -s "$rules" ]; then
  call="{tool} $*"
  while IFS='	' read -r pattern code message; do
    case "$call" in
      $pattern)
        case "$message" in *"no space left"*)
          for last; do :; done
          case "$last" in oci-archive:*) head -c 65536 /dev/zero > "${{last#oci-archive:}}";; esac;;
        esac
        echo "$message" >&2
        exit "$code";;
    esac
  done < "$rules"
fi
exec {original} "$@"
"""


def wrap_tools(bin_dir: Path) -> None:
    originals = {"pct": bin_dir / "pct.sim", "perl": Path("/usr/bin/perl"), "skopeo": Path("/usr/bin/skopeo")}
    if not originals["pct"].exists():
        (bin_dir / "pct").rename(originals["pct"])
    for tool, original in originals.items():
        path = bin_dir / tool
        path.write_text(WRAPPER.format(tool=tool, original=shlex.quote(str(original))))
        path.chmod(0o755)


def fail_tool(host: SimHost, pattern: str, code: int = 1, message: str = "injected failure") -> None:
    (host.state / "tool-faults").write_text(f"{pattern}\t{code}\t{message}\n")


def clear_tool_faults(host: SimHost) -> None:
    path = host.state / "tool-faults"
    if path.exists():
        path.write_text("")


# ---------------------------------------------------------------- what the host holds

def configs(host: SimHost) -> dict:
    """{vmid: parsed pct config} of every CT on the host, read from its files."""
    out = {}
    folder = host.state / "etc-pve" / "nodes" / host.name / "lxc"
    for path in sorted(folder.glob("*.conf")):
        out[int(path.stem)] = pct.parse_config(_config_text(path))
    return out


def _config_text(path: Path) -> str:
    """The main section of a conf file as `pct config` prints it (description decoded)."""
    lines, description = [], []
    for line in path.read_text().splitlines():
        if line.startswith("["):
            break
        if line.startswith("#"):
            description.append(line[1:])
        elif line.strip():
            lines.append(line)
    if description:
        lines.insert(0, "description: " + "%0A".join(description))
    return "\n".join(lines) + "\n"


def marked(host: SimHost, stack: str, app: str) -> dict:
    """{'cts': [vmid...], 'holders': [vmid...]} carrying this stack and app's marker."""
    found = {"cts": [], "holders": []}
    for vmid, conf in configs(host).items():
        desc = conf.get("description", "")
        if pct.holder_line(stack, app) in desc.splitlines():
            found["holders"].append(vmid)
        elif pct.marker_line(stack, app) in desc.splitlines():
            found["cts"].append(vmid)
    return found


def status(host: SimHost, vmid: int) -> str:
    rc, out, err = ssh_run(host, ["pct", "status", str(vmid)])
    return pct.parse_status(out) if rc == 0 else "absent"


def volume_dirs(host: SimHost) -> list:
    root = host.state / "sim" / "zfs"
    return sorted(p for p in root.glob("*/*/subvol-*") if p.is_dir()) if root.exists() else []


def data_owner(host: SimHost, token: str) -> list:
    """The volumes (dir names) that hold the data marker file `token`."""
    return [p.name for p in volume_dirs(host) if (p / token).exists()]


def put_data(host: SimHost, vmid: int, token: str) -> str:
    """Write a data marker into the CT's first storage volume; -> the volume's dir name."""
    conf = configs(host)[vmid]
    volid = conf["mp0"].split(",", 1)[0]
    name = volid.split(":", 1)[1]
    for path in volume_dirs(host):
        if path.name == name:
            (path / token).write_text("precious\n")
            return name
    raise AssertionError(f"no directory for {volid}")


def template_leftovers(host: SimHost) -> list:
    cache = host.state / "vz" / "template" / "cache"
    return sorted(p.name for p in cache.iterdir() if ".tmp" in p.name) if cache.exists() else []


def templates(host: SimHost) -> list:
    cache = host.state / "vz" / "template" / "cache"
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def locks(host: SimHost) -> dict:
    return {vmid: conf["lock"] for vmid, conf in configs(host).items() if conf.get("lock")}


def dump(host: SimHost) -> str:
    return json.dumps({str(k): v for k, v in configs(host).items()}, indent=1, default=str)[:3000]


def environ_for(host: SimHost) -> dict:
    return dict(os.environ, SIM_STATE=str(host.state))
