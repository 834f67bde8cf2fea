"""What `pct destroy` removes besides the CT (pve-container `API2/LXC.pm` destroy_vm):

* always: the CT's ACL entries and pool membership (pve-access-control
  `PVE/AccessControl.pm` remove_vm_access: the `/vms/<vmid>` ACL node and the vmid in its
  pool, in `/etc/pve/user.cfg`) and its firewall file (pve-firewall `PVE/Firewall.pm`
  remove_vmfw_conf: `/etc/pve/firewall/<vmid>.fw`);
* with `--purge 1`: the vmid in vzdump backup jobs (pve-guest-common `PVE/VZDump/Plugin.pm`
  remove_vmid_from_backup_jobs / remove_vmid_from_job: removed from a job's `vmid` list, and
  the job deleted when that list becomes empty; removed from `exclude`), and the HA resource.

`user.cfg` lines: `acl:<propagate>:<path>:<users,@groups,tokens>:<roles>:` and
`pool:<id>:<comment>:<vmid,...>:<storage,...>:`. `jobs.cfg` is a section config:
`vzdump: <id>` then tab-indented `key value` lines.
"""

from __future__ import annotations

import re

from . import paths


def firewall_file(vmid: int):
    return paths.etc_pve() / "firewall" / f"{vmid}.fw"


def user_cfg():
    return paths.etc_pve() / "user.cfg"


def jobs_cfg():
    return paths.etc_pve() / "jobs.cfg"


def remove_vm_access(vmid: int) -> None:
    path = user_cfg()
    if not path.exists():
        return
    out = []
    for line in path.read_text().splitlines():
        parts = line.split(":")
        if parts[0] == "acl" and len(parts) >= 3 and parts[2] == f"/vms/{vmid}":
            continue
        if parts[0] == "pool" and len(parts) >= 4:
            vms = [v for v in parts[3].split(",") if v and v != str(vmid)]
            parts[3] = ",".join(vms)
            line = ":".join(parts)
        out.append(line)
    path.write_text("\n".join(out) + "\n")


def remove_vmfw_conf(vmid: int) -> None:
    firewall_file(vmid).unlink(missing_ok=True)


def _split_list(value: str) -> list:
    return [v for v in re.split(r"[,;\s]+", value) if v]


def remove_vmid_from_backup_jobs(vmid: int) -> None:
    path = jobs_cfg()
    if not path.exists():
        return
    sections, current = [], None
    for line in path.read_text().splitlines():
        head = re.match(r"^(\S+):\s*(\S+)\s*$", line)
        if head:
            current = {"type": head.group(1), "id": head.group(2), "lines": []}
            sections.append(current)
        elif current is not None and line.strip():
            key, _, value = line.strip().partition(" ")
            current["lines"].append([key, value.strip()])
    out = []
    for sec in sections:
        if sec["type"] == "vzdump":
            keys = {k: i for i, (k, _v) in enumerate(sec["lines"])}
            if "vmid" in keys:
                left = [v for v in _split_list(sec["lines"][keys["vmid"]][1]) if v != str(vmid)]
                if not left:
                    continue  # the job named only this vmid: deleted
                sec["lines"][keys["vmid"]][1] = ",".join(left)
            elif "exclude" in keys:
                left = [v for v in _split_list(sec["lines"][keys["exclude"]][1]) if v != str(vmid)]
                if left:
                    sec["lines"][keys["exclude"]][1] = ",".join(left)
                else:
                    del sec["lines"][keys["exclude"]]
        out.append(f"{sec['type']}: {sec['id']}")
        out += [f"\t{k} {v}".rstrip() for k, v in sec["lines"]]
        out.append("")
    path.write_text("\n".join(out))


def remove_ha_resource(vmid: int) -> bool:
    path = paths.etc_pve() / "ha" / "resources.cfg"
    if not path.exists():
        return False
    text = path.read_text()
    blocks = re.split(r"\n(?=\S)", text)
    kept = [b for b in blocks if not re.match(rf"ct:\s*{vmid}\s*(\n|$)", b)]
    if len(kept) == len(blocks):
        return False
    path.write_text("\n".join(kept))
    return True


def add_vm_to_pool(vmid: int, pool: str) -> None:
    """pve-access-control `AccessControl.pm` add_vm_to_pool (what `pct create --pool` ends with)."""
    path = user_cfg()
    lines = path.read_text().splitlines() if path.exists() else []
    for i, line in enumerate(lines):
        parts = line.split(":")
        if parts[0] == "pool" and len(parts) >= 4 and parts[1] == pool:
            vms = [v for v in parts[3].split(",") if v]
            if str(vmid) not in vms:
                vms.append(str(vmid))
            parts[3] = ",".join(vms)
            lines[i] = ":".join(parts)
    path.write_text("\n".join(lines) + "\n")


def pool_of(vmid: int) -> str | None:
    path = user_cfg()
    for line in path.read_text().splitlines() if path.exists() else []:
        parts = line.split(":")
        if parts[0] == "pool" and len(parts) >= 4 and str(vmid) in parts[3].split(","):
            return parts[1]
    return None


def replication_job(vmid: int) -> str | None:
    """The id of a replication job for this guest (`local: <vmid>-<n>` in replication.cfg)."""
    path = paths.etc_pve() / "replication.cfg"
    for line in path.read_text().splitlines() if path.exists() else []:
        match = re.match(rf"^local:\s*({vmid}-\d+)\s*$", line)
        if match:
            return match.group(1)
    return None
