"""Backups of a CT with `vzdump`, found again by their notes; restore with `pct restore`.

Pure builders and parsers (nothing connects). Sources (pve-manager PVE/VZDump.pm, pve-container
src/PVE/VZDump/LXC.pm and src/PVE/API2/LXC.pm, pve-storage) are cited in docs/dev/simulator.md.

* A homefleet backup carries the notes line `homefleet <stack>/<app> vmid <vmid> before <reason>`
  (`vzdump --notes-template`, stored as `<archive>.notes`). Only archives whose notes parse as
  that line for this stack and app are ever pruned; other backups, including other backups of
  the same vmid, are never touched.
* `--prune-backups keep-all=1` keeps vzdump from pruning (its default `--remove 1` would apply
  the storage's retention to every backup of the vmid) and from refusing a backup because the
  storage's retention is reached ("There is a max backup limit of N enforced ...").
* vzdump reads the CT's *active* config (LXC.pm prepare -> load_config): a volume mount point
  is in the archive only with `backup=1` there; bind and device mount points never are.
  PVE leaves a changed mpN of a running CT pending, so the flag is set while the CT is stopped.
* `--mode snapshot` only where every backed-up volume can snapshot (ZFS, LVM-thin, RBD, btrfs);
  vzdump itself would fall back to `suspend` ("mode failure - some volumes do not support
  snapshots"), homefleet asks for `stop` instead (vzdump stops the CT and starts it again).
"""

import json
import re
from typing import Optional

from . import pct, preflight, propstring
from .script import q, section, sh

NOTES_PREFIX = "homefleet "
_NOTES = re.compile(r"^homefleet (\S+)/([^/\s]+) vmid (\d+) before (.+)$")
_ARCHIVE = re.compile(r"^INFO: creating vzdump archive '([^']+)'$", re.M)
_VOLID_VMID = re.compile(r":backup/vzdump-lxc-(\d+)-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.")
SNAPSHOT_TYPES = {"zfspool", "lvmthin", "rbd", "btrfs", "zfs"}
REASON = re.compile(r"^[a-z0-9][a-z0-9 .:_-]{0,80}$")


# ---------- notes ----------

def notes_line(stack: str, app: str, vmid: int, reason: str) -> str:
    return f"homefleet {stack}/{app} vmid {int(vmid)} before {reason}"


def notes_template(notes: str) -> str:
    """The notes as a vzdump template (PVE/VZDump.pm $verify_notes_template): one line, `\\` escaped
    as `\\\\`; `{{...}}` would be a variable, so none may appear."""
    if "\n" in notes or "\r" in notes:
        raise ValueError("a backup note is one line")
    if "{{" in notes or "}}" in notes:
        raise ValueError(f"a backup note cannot hold '{{{{' or '}}}}': {notes!r}")
    return notes.replace("\\", "\\\\")


def parse_notes(notes: Optional[str]) -> Optional[dict]:
    match = _NOTES.match(notes or "")
    if not match:
        return None
    return {"stack": match.group(1), "app": match.group(2), "vmid": int(match.group(3)), "reason": match.group(4)}


# ---------- argv builders ----------

def backup_argv(vmid: int, storage: str, mode: str, notes: str) -> list:
    return ["vzdump", str(vmid), "--storage", storage, "--mode", mode, "--compress", "zstd",
            "--notes-template", notes_template(notes), "--prune-backups", "keep-all=1", "--remove", "0"]


def free_argv(volid: str) -> list:
    return ["pvesm", "free", volid]


def list_lines(storage: str) -> list:
    """`pvesh get /nodes/<node>/storage/<storage>/content --content backup` (JSON, with notes:
    `pvesm list` does not print them)."""
    return [
        "node=$(uname -n)",
        "node=${node%%.*}",
        q(["pvesh", "get"]) + ' "/nodes/$node/storage/"' + q([storage]) + '"/content" '
        + q(["--content", "backup", "--output-format", "json"]) + " </dev/null",
    ]


def list_script(storage: str) -> list:
    return sh(["set -u", *list_lines(storage)])


def read_script(vmid: int, storage: str) -> list:
    """What a backup is planned from: the CT's active config and status, the storages, the backups."""
    return sh([
        "set -u",
        section("config"), q(["pct", "config", str(vmid), "--current"]) + " </dev/null || exit $?",
        section("status"), q(pct.status_argv(vmid)) + " </dev/null || exit $?",
        section("storages"), q(["pvesm", "status"]) + " </dev/null || exit $?",
        section("backups"), "{", *["  " + line for line in list_lines(storage)], "} || echo '[]'",
    ])


def space_check(storage: str, need_kib: int) -> list:
    """The backup storage has at least `need_kib` KiB free (`pvesm status`, Available column)."""
    avail = "avail=$(" + q(["pvesm", "status", "--storage", storage]) + " 2>/dev/null </dev/null | " \
        + q(["awk", "NR == 2 { print $6 }"]) + ")"
    message = (f"backup storage '{storage}' (backupStorage) has %s KiB free, the backup needs about {need_kib} KiB "
               "— free space there (old backups: pvesm list " + storage + " --content backup) or set backupStorage "
               "to a storage with room")
    return [avail, 'case "$avail" in ""|*[!0-9]*) avail=0 ;; esac',
            f'test "$avail" -ge {int(need_kib)} || {{ printf {q([message + chr(92) + "n"])} "$avail" >&2; bad=1; }}']


def backup_script(vmid: int, storage: str, mode: str, notes: str, flags: dict, running: bool, need_kib: int) -> list:
    """Checks first (storage exists, allows backups, has room), then: when `flags` ({mpN: value
    with backup=1}) must be set on a running CT, stop it, set them, back it up, start it again;
    otherwise vzdump directly (its stop mode stops and starts the CT itself)."""
    lines = ["set -u", *preflight.begin(),
             *preflight.storage_content(storage, "backup", "backups", "backupStorage"),
             *space_check(storage, need_kib), *preflight.end()]
    stop_first = bool(flags) and running
    if stop_first:
        lines.append(q(pct.shutdown_argv(vmid)) + " </dev/null || exit $?")
    if flags:
        lines.append(q(pct.set_argv(vmid, flags)) + " </dev/null || exit $?")
    lines.append(q(backup_argv(vmid, storage, mode, notes)) + " </dev/null")
    lines.append("rc=$?")
    if stop_first:
        lines.append(q(pct.start_argv(vmid)) + ' </dev/null || { test "$rc" != 0 || rc=1; }')
    lines.append("exit $rc")
    return sh(lines)


def restore_script(vmid: int, volid: str, options: dict, post_options: Optional[dict], start: bool,
                   running: bool) -> list:
    """Stop the CT if it runs, `pct restore --force` with the volumes given explicitly (each on its
    own storage: without them PVE puts every volume on `--storage`, default `local`), then the
    bind mount points (put in after the extraction, as PVE's own restore delays them: create_vm
    mounts every mount point read-write while it extracts), then start."""
    lines = ["set -eu"]
    if running:
        lines.append(q(pct.stop_argv(vmid)) + " </dev/null")
    argv = ["pct", "restore", str(vmid), volid, "--force", "1"]
    for key, value in options.items():
        argv += [f"--{key}", value]
    lines.append(q(argv) + " </dev/null")
    if post_options:
        lines.append(q(pct.set_argv(vmid, post_options)) + " </dev/null")
    if start:
        lines.append(q(pct.start_argv(vmid)) + " </dev/null")
    return sh(lines)


def restore_options(spec: dict) -> tuple:
    """(restore options, options to set afterwards) for a CT spec: rootfs and every volume as
    `STORAGE:SIZE,mp=...,backup=1`; bind mount points afterwards."""
    options = {"rootfs": f"{spec['rootfs_storage']}:{int(spec.get('rootfs_size', 4))}"}
    post = {}
    for key, kind, item in pct.mount_slots(spec):
        if kind == "volume":
            options[key] = pct.volume_create_value(item)
        else:
            post[key] = pct.bind_value(item)
    return options, post


# ---------- planning ----------

def missing_flags(config: dict, spec: dict) -> dict:
    """{mpN: value with backup=1} for the CT's volume mount points (active config) that should be
    in the backup and are not: every volume, unless the spec says `backup: false` for its path."""
    excluded = {v["path"] for v in spec.get("volumes") or [] if v.get("backup") is False}
    flags = {}
    for key, value in config.items():
        if not re.fullmatch(r"mp\d+", key) or value.split(",", 1)[0].startswith("/"):
            continue
        pairs = propstring.parse(value, default_key="volume")
        if pairs.get("mp") in excluded or pairs.get("backup") == "1":
            continue
        pairs["backup"] = "1"
        flags[key] = propstring.join(pairs, first_bare="volume")
    return flags


def backed_volumes(config: dict, flags: dict) -> list:
    """Volume ids in the archive: the rootfs and every volume mpN with backup=1 (after `flags`)."""
    vols = []
    for key, value in {**config, **flags}.items():
        if key != "rootfs" and not re.fullmatch(r"mp\d+", key):
            continue
        pairs = propstring.parse(value, default_key="volume")
        volume = pairs.get("volume", "")
        if volume.startswith("/"):
            continue
        if key == "rootfs" or pairs.get("backup") == "1":
            vols.append(volume)
    return vols


def parse_storages(text: str) -> dict:
    """`pvesm status` -> {storage: type}."""
    types = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2:
            types[parts[0]] = parts[1]
    return types


def choose_mode(volumes: list, storage_types: dict) -> str:
    """snapshot when every backed-up volume's storage can snapshot, else stop."""
    if all(storage_types.get(v.split(":", 1)[0]) in SNAPSHOT_TYPES for v in volumes):
        return "snapshot"
    return "stop"


# ---------- parsers ----------

def parse_list(text: str) -> list:
    """The storage's backups: [{volid, ctime, size, notes, vmid, protected}]."""
    text = text.strip()
    if not text:
        return []
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError(f"unexpected backup listing: {text[:200]!r}")
    res = []
    for item in data:
        if not isinstance(item, dict) or item.get("content", "backup") != "backup" or "volid" not in item:
            continue
        res.append({"volid": item["volid"], "ctime": int(item.get("ctime") or 0), "size": int(item.get("size") or 0),
                    "notes": item.get("notes"), "vmid": item.get("vmid"), "protected": bool(item.get("protected"))})
    return res


def ours(backups: list, stack: str, app: str) -> list:
    """This app's homefleet backups, newest first. The archive's own vmid must match its note's."""
    res = []
    for item in backups:
        note = parse_notes(item.get("notes"))
        if not note or (note["stack"], note["app"]) != (stack, app):
            continue
        named = _VOLID_VMID.search(item["volid"])
        if not named or int(named.group(1)) != note["vmid"]:
            continue
        res.append(item)
    return sorted(res, key=lambda i: (i.get("ctime") or 0, i["volid"]), reverse=True)


def prune_candidates(backups: list, stack: str, app: str, keep: int) -> list:
    """Volids of this app's homefleet backups beyond the newest `keep` (protected ones are kept
    and not counted: PVE refuses to free them)."""
    mine = [b for b in ours(backups, stack, app) if not b.get("protected")]
    return [b["volid"] for b in mine[max(1, int(keep)):]]


def archive_volid(stdout: str, storage: str) -> Optional[str]:
    """The volid of the archive a vzdump run made (`INFO: creating vzdump archive '<path>'`)."""
    match = _ARCHIVE.search(stdout)
    if not match:
        return None
    return f"{storage}:backup/{match.group(1).rsplit('/', 1)[-1]}"


def log_tail(stdout: str, stderr: str, lines: int = 8) -> str:
    """The last vzdump log lines and its error, for an error message."""
    text = "\n".join(line for line in stdout.splitlines() if line.startswith(("INFO:", "ERROR:", "WARN:")))
    tail = "\n".join(text.splitlines()[-lines:])
    return (tail + "\n" + stderr.strip()).strip()
