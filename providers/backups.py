"""A backup of an app's CT before a risky change, pruning this app's old ones, and the way back.

Plain functions over an SSH target and the CT spec (`props`, the ProxmoxCT inputs). Host
commands are built in providers/hosts/vzdump.py; nothing here keeps a connection.

* `take` refuses before anything changes when the backup storage (`backup_storage`, default
  `local`) does not exist, does not allow backups or lacks room for about the size of this app's
  last backup; it sets `backup=1` on the CT's data volumes where it is missing (stopping the CT
  for that when it runs: PVE applies a changed mount point only to a stopped CT), then runs
  vzdump and returns the archive's volid.
* `prune` removes this app's homefleet backups beyond the newest `keep_backups` (default 3),
  recognised by their notes; nothing else on the storage is touched.
* `restore` puts a CT back from one of those archives at the same vmid (its MAC and network come
  from the archive's config); its data volumes are replaced by the archive's content.
"""

from typing import Optional

from . import log
from .base import target_of
from .ct_data import write
from .errors import HostCommandError
from .hosts import pct, script, vzdump
from .transport import run

DEFAULT_STORAGE = "local"
DEFAULT_KEEP = 3
BACKUP_TIMEOUT = 3600
# The estimate of a first backup (no earlier one to go by): at least this much free space.
MIN_FREE_KIB = 64 * 1024


def storage_of(props: dict) -> str:
    return props.get("backup_storage") or DEFAULT_STORAGE


def keep_of(props: dict) -> int:
    keep = props.get("keep_backups")
    return DEFAULT_KEEP if keep in (None, "") else max(1, int(keep))


def _list(target, storage: str) -> list:
    result = run(target, vzdump.list_script(storage))
    if not result.ok:
        raise HostCommandError(target.name, f"listing the backups on storage '{storage}'", result.stderr)
    return vzdump.parse_list(result.stdout)


def backups_of(target, props: dict) -> list:
    """This app's homefleet backups on its backup storage, newest first ({volid, ctime, size, notes, ...})."""
    return vzdump.ours(_list(target, storage_of(props)), props["stack"], props["app"])


def take(target, props: dict, vmid: int, reason: str) -> str:
    """vzdump of CT `vmid` with its data volumes; -> the archive's volid (`<storage>:backup/vzdump-lxc-...`)."""
    target = target or target_of(props)
    storage = storage_of(props)
    if not vzdump.REASON.match(reason):
        raise ValueError(f"backup reason {reason!r}: lowercase words, digits and - _ . :")
    notes = vzdump.notes_line(props["stack"], props["app"], vmid, reason)
    result = run(target, vzdump.read_script(vmid, storage))
    if not result.ok:
        raise HostCommandError(target.name, f"reading CT {vmid} before its backup", result.stderr)
    parts = script.split_sections(result.stdout)
    config = pct.parse_config(parts.get("config", ""))
    running = pct.parse_status(parts.get("status", "")) == "running"
    flags = vzdump.missing_flags(config, props)
    mode = vzdump.choose_mode(vzdump.backed_volumes(config, flags), vzdump.parse_storages(parts.get("storages", "")))
    try:
        earlier = vzdump.ours(vzdump.parse_list(parts.get("backups", "")), props["stack"], props["app"])
    except ValueError:
        earlier = []
    need_kib = max(MIN_FREE_KIB, earlier[0]["size"] * 11 // 10 // 1024) if earlier else MIN_FREE_KIB
    if flags:
        log.info(target.name, props["app"], f"CT {vmid}: including {', '.join(sorted(flags))} in backups (backup=1)"
                 + ("; the CT is stopped for that and started again" if running else ""))
    log.info(target.name, props["app"], f"backing up CT {vmid} to {storage} ({mode} mode) before {reason}")
    argv = vzdump.backup_script(vmid, storage, mode, notes, flags, running, need_kib)
    result = write(target, argv, timeout=BACKUP_TIMEOUT)
    volid = vzdump.archive_volid(result.stdout, storage)
    if not result.ok or volid is None:
        raise HostCommandError(target.name, f"backing up CT {vmid} ({props['app']}) to {storage}",
                               vzdump.log_tail(result.stdout, result.stderr))
    log.info(target.name, props["app"], f"backup of CT {vmid}: {volid}")
    return volid


def prune(target, props: dict, vmid: Optional[int] = None) -> list:
    """Remove this app's homefleet backups beyond the newest `keep_backups`; -> the volids removed.
    `vmid` is accepted for symmetry and not used: an app's backups are kept per app."""
    target = target or target_of(props)
    storage = storage_of(props)
    doomed = vzdump.prune_candidates(_list(target, storage), props["stack"], props["app"], keep_of(props))
    if not doomed:
        return []
    lines = ["set -eu"] + [script.q(vzdump.free_argv(volid)) + " </dev/null" for volid in doomed]
    result = write(target, script.sh(lines))
    if not result.ok:
        raise HostCommandError(target.name, f"removing old backups of {props['app']} from {storage}", result.stderr)
    log.info(target.name, props["app"], f"removed {len(doomed)} old backup(s): {', '.join(doomed)}")
    return doomed


def restore(target, props: dict, vmid: int, volid: str, start: Optional[bool] = None) -> None:
    """Replace CT `vmid` by the archive `volid` (stopping it first). `props` is the spec the
    archive was taken under: its volumes say where each volume goes (storage and size), its bind
    mounts are set again afterwards. Starts the CT unless `start` (default: props' `running`) is False."""
    target = target or target_of(props)
    if not volid.split(":", 1)[-1].startswith("backup/vzdump-lxc-"):
        raise ValueError(f"not a container backup: {volid!r}")
    result = run(target, script.sh([script.q(pct.status_argv(vmid)) + " </dev/null 2>/dev/null || true"]))
    running = result.ok and "status: running" in result.stdout
    options, post = vzdump.restore_options(props)
    start = props.get("running", True) if start is None else start
    log.info(target.name, props["app"], f"restoring CT {vmid} from {volid}")
    result = write(target, vzdump.restore_script(vmid, volid, options, post or None, bool(start), running),
                   timeout=BACKUP_TIMEOUT)
    if not result.ok:
        raise HostCommandError(target.name, f"restoring CT {vmid} ({props['app']}) from {volid}", result.stderr)
