"""`vzdump <vmid-list> [OPTIONS]`: container backups to a `dir` storage (pve-manager `PVE/VZDump.pm`,
`PVE/API2/VZDump.pm`, `PVE/CLI/vzdump.pm`; pve-container `src/PVE/VZDump/LXC.pm`; pve-guest-common
`src/PVE/VZDump/Common.pm` (options) and `src/PVE/VZDump/Plugin.pm` (`INFO:`/`ERROR:` lines)).

The job runs as a foreground task: its log lines go to stdout; when a guest failed the task dies
with `job errors` (stderr, exit 255). Errors of `PVE::VZDump->new` (storage missing, no `backup`
content) kill the task before any guest is tried. Only `lxc` guests and `dir`-like storages
(archives in `<path>/dump/`) are simulated; PBS and backup providers are not.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import sys
import time
from pathlib import Path

from . import backup_archive, cli_args, paths, runstate, storage, task
from . import conf as conf_mod
from .cli_args import Command
from .conf import CTConfig, Section
from .ct_ops import mount_points
from .errors import ParamError, PveError
from .schema import Prop, split_list

B = Prop(type="boolean")
PRUNE_KEYS = ("keep-all", "keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly")
PROPS: dict[str, Prop] = {
    "vmid": Prop(),
    "node": Prop(),
    "all": B,
    "stdexcludes": B,
    "compress": Prop(enum=["0", "1", "gzip", "lzo", "zstd"]),
    "pigz": Prop(type="integer"),
    "zstd": Prop(type="integer"),
    "quiet": B,
    "mode": Prop(enum=["snapshot", "suspend", "stop"]),
    "exclude": Prop(),
    "exclude-path": Prop(),
    "mailto": Prop(),
    "mailnotification": Prop(enum=["always", "failure"]),
    "notification-mode": Prop(enum=["auto", "legacy-sendmail", "notification-system"]),
    "tmpdir": Prop(),
    "dumpdir": Prop(),
    "script": Prop(),
    "storage": Prop(format="pve-storage-id"),
    "stop": B,
    "bwlimit": Prop(type="integer", minimum=0),
    "ionice": Prop(type="integer", minimum=0, maximum=8),
    "performance": Prop(),
    "fleecing": Prop(),
    "lockwait": Prop(type="integer", minimum=0),
    "stopwait": Prop(type="integer", minimum=0),
    "prune-backups": Prop(),
    "remove": B,
    "pool": Prop(),
    "notes-template": Prop(max_length=1024),
    "protected": B,
    "pbs-change-detection-mode": Prop(enum=["legacy", "data", "metadata"]),
    "job-id": Prop(max_length=50),
    "stdout": B,
}
COMMAND = Command("vzdump", "vzdump", ["vmid"], PROPS, {"vmid"})


class Interrupted(PveError):
    pass


def _interrupt(_signum, _frame):
    raise Interrupted("interrupted by signal")


# --- parameters ----------------------------------------------------------------------------------

def verify_notes_template(template: str) -> None:
    """VZDump.pm $verify_notes_template."""
    if "\n" in template:
        raise ValueError("contains a line feed")
    problems = []
    for m in re.finditer(r"\\(.)", template, re.S):
        if m.group(1) not in ("n", "\\"):
            problems.append(f"escape sequence '\\{m.group(1)}' at char {m.start()}")
    for m in re.finditer(r"\{\{([^\s{}]+)\}\}", template):
        if m.group(1) not in ("cluster", "guestname", "node", "vmid"):
            problems.append(f"variable '{m.group(1)}' at char {m.start(1)}")
    if problems:
        raise ValueError("found unknown: " + ", ".join(problems))


def generate_notes(template: str, vmid: int, hostname: str) -> str:
    """VZDump.pm $generate_notes: `\\n` and `\\\\` unescaped, then the four variables."""
    info = {"cluster": "standalone node", "guestname": hostname, "node": paths.node_name(), "vmid": str(vmid)}
    text = re.sub(r"\\(.)", lambda m: "\\" if m.group(1) == "\\" else "\n", template)
    return re.sub(r"\{\{(cluster|guestname|node|vmid)\}\}", lambda m: info[m.group(1)], text)


def parse_prune(text: str, where: str) -> dict[str, int]:
    """The `prune-backups` property string (pve-storage Plugin.pm $prune_backups_format)."""
    res: dict[str, int] = {}
    for part in split_list(text):
        key, sep, value = part.partition("=")
        if key not in PRUNE_KEYS or not sep or not value.isdigit():
            raise ParamError({"prune-backups": f"invalid format - format error\n{key}: property is not defined in schema "
                                              "and the schema does not allow additional properties"})
        res[key] = int(value)
    if res.get("keep-all") and len(res) > 1:
        raise ParamError({"prune-backups": "keep-all cannot be set together with other options."})
    return res


def check_vmids(text: str) -> list[int]:
    """VZDump.pm check_vmids: sorted, leading zeros dropped, 0 skipped."""
    res = []
    for item in split_list(text):
        if not item.isdigit():
            raise PveError(f"ERROR: strange VM ID '{item}'")
        if int(item):
            res.append(int(item))
    return sorted(res)


def command_line(params: dict) -> str:
    """Common.pm command_line (Perl hash order; sorted here)."""
    cmd = "vzdump"
    if params.get("vmid"):
        cmd += " " + " ".join(split_list(params["vmid"]))
    for key in sorted(params):
        if key in ("vmid", "stdout", "job-id") or params[key] in (None, ""):
            continue
        value = str(params[key])
        quoted = value if re.fullmatch(r"[\w.,=:/+-]+", value) else "'" + value.replace("'", "'\"'\"'") + "'"
        cmd += f" --{key} {quoted}"
    return cmd


# --- the job -------------------------------------------------------------------------------------

def _say(t: task.Task, level: str, message: str, log: list[str]) -> None:
    """Plugin.pm debugmsg: `INFO: `/`ERROR: ` per line to the task, timestamped into the guest log."""
    prefix = {"info": "INFO:", "err": "ERROR:", "warn": "WARN:"}[level]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    for line in message.rstrip("\n").split("\n"):
        log.append(f"{stamp} {prefix} {line}")
        try:
            if level == "warn":
                t.warn(line)
            else:
                t.log(f"{prefix} {line}")
        except OSError:
            pass                            # the client went away; the job still cleans up


def format_size(size: int) -> str:
    """VZDump.pm format_size."""
    kb = size / 1024
    if kb < 1024:
        return f"{int(kb)}KB"
    mb = size / (1024 * 1024)
    if mb < 1024:
        return f"{int(mb)}MB"
    gb = mb / 1024
    return f"{gb:.2f}GB" if gb < 1024 else f"{gb / 1024:.2f}TB"


def format_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Job:
    def __init__(self, params: dict):
        self.params = params
        self.storeid = params.get("storage") or "local"
        self.compress = params.get("compress", "0")
        self.mode = params.get("mode", "snapshot")
        self.remove = params.get("remove", "1") == "1"
        self.notes = params.get("notes-template")
        self.excludes = list(backup_archive.STD_EXCLUDES) if params.get("stdexcludes", "1") == "1" else []
        if params.get("dumpdir") or params.get("stdout") == "1" or params.get("tmpdir"):
            raise PveError("dumpdir, tmpdir and stdout are not supported by the simulator")

    def open(self) -> None:
        """VZDump.pm new: the storage must exist, be enabled and allow `backup` content."""
        errors = []
        cfg = storage.load_config()
        try:
            storage.check_enabled(self.storeid, cfg)
        except PveError as err:
            errors.append(f"could not activate storage '{self.storeid}': {err.message.rstrip()}")
        try:
            scfg = storage.get_storage(self.storeid, cfg)
            if "backup" not in scfg.content:
                raise PveError(f"can't use storage '{self.storeid}' for backups - wrong content type")
            self.scfg = scfg
            self.dumpdir = scfg.dump_dir()
        except PveError as err:
            errors.append(f"could not get storage information for '{self.storeid}': {err.message.rstrip()}")
        if errors:
            raise PveError("\n".join(errors))
        prune = self.params.get("prune-backups") or self.scfg.options.get("prune-backups") or "keep-all=1"
        self.prune = parse_prune(prune, "storage") if isinstance(prune, str) else prune
        if self.prune.get("keep-all"):
            self.remove = False
        self.cfg = cfg

    def run(self, t: task.Task) -> None:
        self.open()
        lock = _global_lock(t)
        try:
            t.log(f"INFO: starting new backup job: {command_line(self.params)}")
            errors = 0
            for vmid in check_vmids(self.params.get("vmid", "")):
                if not self.backup_one(t, vmid):
                    errors += 1
            t.log("INFO: Backup job finished with errors" if errors else "INFO: Backup job finished successfully")
            if errors:
                raise PveError("job errors")
        finally:
            lock.close()

    # -- one guest (VZDump.pm exec_backup_task) --

    def backup_one(self, t: task.Task, vmid: int) -> bool:
        log: list[str] = []
        start = time.time()
        state = {"locked": False, "restart": False, "snapshot": False, "tmptar": None}
        basename = f"vzdump-lxc-{vmid}-" + time.strftime("%Y_%m_%d-%H_%M_%S", time.localtime(start))
        err = None
        try:
            self._backup(t, vmid, basename, log, state)
        except PveError as exc:
            err = exc
        if state["locked"]:
            _set_lock(vmid, None)
        if state["tmptar"] is not None and state["tmptar"].exists():
            state["tmptar"].unlink()
        if state["snapshot"]:
            _say(t, "info", "cleanup temporary 'vzdump' snapshot", log)
        if state["restart"] and not runstate.is_running(vmid):
            try:
                _say(t, "info", "restarting vm", log)
                from .pct_power import start_in_task
                start_in_task(vmid, t)
                _say(t, "info", f"guest is online again after {max(1, int(time.time() - state['stopped']))} seconds", log)
            except PveError as exc:
                _say(t, "warn", exc.message, log)
        if err is not None:
            _say(t, "err", f"Backup of VM {vmid} failed - {err.message.rstrip()}", log)
            _say(t, "info", "Failed at " + time.strftime("%Y-%m-%d %H:%M:%S"), log)
        else:
            _say(t, "info", f"Finished Backup of VM {vmid} ({format_time(int(time.time() - start))})", log)
            _say(t, "info", "Backup finished at " + time.strftime("%Y-%m-%d %H:%M:%S"), log)
        if state.get("logfile"):
            state["logfile"].write_text("\n".join(log) + "\n")
        if isinstance(err, Interrupted):
            raise err
        return err is None

    def _backup(self, t: task.Task, vmid: int, basename: str, log: list, state: dict) -> None:
        if not conf_mod.exists(vmid):
            raise PveError(f"unable to find VM '{vmid}'")
        self._check_limit(vmid)
        ext = {"0": ".tar", "gzip": ".tar.gz", "zstd": ".tar.zst"}.get(self.compress)
        if ext is None:
            raise PveError(f"compression '{self.compress}' is not supported by the simulator")
        target = self.dumpdir / (basename + ext)
        tmptar = target.with_name(basename + ".tar.dat")
        state["logfile"] = self.dumpdir / (basename + ".log")
        self.dumpdir.mkdir(parents=True, exist_ok=True)
        _say(t, "info", f"Starting Backup of VM {vmid} (lxc)", log)
        _say(t, "info", "Backup started at " + time.strftime("%Y-%m-%d %H:%M:%S"), log)
        running = runstate.is_running(vmid)
        _say(t, "info", f"status = {'running' if running else 'stopped'}", log)
        _set_lock(vmid, "backup")
        state["locked"] = True
        conf = conf_mod.load(vmid)
        mode = self.mode if running else "stop"
        sources, mounts = self._prepare(t, conf, log)
        if mode == "snapshot":
            if not all(scfg.supports_snapshot(volname)
                       for scfg, volname in (storage.resolve(volid, self.cfg) for _p, volid, _h in sources)):
                _say(t, "info", "mode failure - some volumes do not support snapshots", log)
                _say(t, "info", "trying 'suspend' mode instead", log)
                mode = "suspend"
        _say(t, "info", f"backup mode: {mode}", log)
        _say(t, "info", f"ionice priority: {self.params.get('ionice', '7')}", log)
        if mode == "stop" and running:
            _say(t, "info", "stopping virtual guest", log)
            state["stopped"] = time.time()
            _stop(vmid)
            state["restart"] = True
        elif mode == "suspend":
            _say(t, "info", f"starting first sync /proc/{(runstate.info(vmid) or {}).get('pid')}/root/ to "
                            f"{self.dumpdir / (basename + '.tmp')}", log)
            _say(t, "info", "first sync finished - transferred (simulated)", log)
            _say(t, "info", "suspending guest", log)
            _say(t, "info", "starting final sync (simulated)", log)
            _say(t, "info", "resuming guest", log)
            _say(t, "info", "guest is online again after <1 seconds", log)
        elif mode == "snapshot":
            _say(t, "info", "create storage snapshot 'vzdump'", log)
            state["snapshot"] = True
        _say(t, "info", f"creating vzdump archive '{target}'", log)
        state["tmptar"] = tmptar
        time.sleep(_delay())
        written = backup_archive.write(
            tmptar, {".tar": None, ".tar.gz": "gzip", ".tar.zst": "zstd"}[ext], _pct_conf(conf), _firewall(vmid),
            sources, mounts, conf.get("unprivileged") == "1", self.excludes)
        _say(t, "info", f"Total bytes written: {written} ({format_size(written)})", log)
        os.replace(tmptar, target)
        state["tmptar"] = None
        _say(t, "info", f"archive file size: {format_size(target.stat().st_size)}", log)
        if self.notes:
            _say(t, "info", "adding notes to backup", log)
            notes = generate_notes(self.notes, vmid, conf.get("hostname") or f"CT{vmid}")
            if notes:
                target.with_name(target.name + ".notes").write_bytes(notes.encode("utf-8"))
        if self.params.get("protected") == "1":
            _say(t, "info", "marking backup as protected", log)
            target.with_name(target.name + ".protected").touch()
        if self.remove:
            self._prune(t, vmid, log)

    def _prepare(self, t: task.Task, conf: CTConfig, log: list) -> tuple[list, set]:
        """LXC.pm prepare: rootfs always, volume mount points with `backup=1`, never bind or
        device mount points (Config.pm mountpoint_backup_enabled)."""
        if conf.get("hostname"):
            _say(t, "info", f"CT Name: {conf.get('hostname')}", log)
        sources, mounts = [], set()
        for key, mp in mount_points(conf.main.values):
            path = "/" + mp.get("mp", "/").strip("/") if key != "rootfs" else "/"
            if key != "rootfs":
                mounts.add(path)
            if key == "rootfs":
                included, reason = True, "rootfs"
            elif mp["type"] != "volume":
                included, reason = False, "not a volume"
            elif mp.get("backup") == "1":
                included, reason = True, "enabled"
            else:
                included, reason = False, "disabled"
            if not included:
                _say(t, "info", f"excluding {mp['type']} mount point {key} ('{mp['mp']}') from backup ({reason})", log)
                continue
            _say(t, "info", f"including mount point {key} ('{mp['mp']}') in backup", log)
            sources.append((path, mp["volume"], storage.volume_path(mp["volume"], self.cfg)))
        return sources, mounts

    def _backups_of(self, vmid: int) -> list[dict]:
        return [b for b in self.scfg.list_backups(vmid) if b.get("subtype") in ("lxc", None)]

    def _check_limit(self, vmid: int) -> None:
        """exec_backup_task: with a retention but no `remove`, a full storage refuses a new backup."""
        limit = 0 if self.prune.get("keep-all") else sum(self.prune.values())
        if limit and not self.remove:
            count = len([b for b in self._backups_of(vmid) if not b.get("protected")])
            if count >= limit:
                raise PveError(f"There is a max backup limit of {limit} enforced by the target storage or the vzdump "
                               "parameters. Either increase the limit or delete old backups.")

    def _prune(self, t: task.Task, vmid: int, log: list) -> None:
        """Plugin.pm prune_backups over this vmid's standard-named lxc backups (keep-last only)."""
        keepstr = ", ".join(f"{k}={self.prune[k]}" for k in sorted(self.prune))
        _say(t, "info", f"prune older backups with retention: {keepstr}", log)
        if set(self.prune) - {"keep-last"}:
            raise PveError("the simulator prunes with keep-last only")
        group = sorted((b for b in self._backups_of(vmid) if "ctime" in b and not b.get("protected")),
                       key=lambda b: b["ctime"], reverse=True)
        pruned = 0
        for entry in group[self.prune.get("keep-last", 0):]:
            _say(t, "info", f"removing backup '{entry['volid']}'", log)
            path = storage.volume_path(entry["volid"], self.cfg)
            path.unlink()
            storage.archive_auxiliaries_remove(path)
            pruned += 1
        extra = " not covered by keep-retention policy" if pruned else ""
        _say(t, "info", f"pruned {pruned} backup(s){extra}", log)


def _delay() -> float:
    """`$SIM_STATE/backup_delay_ms`: extra seconds the archive takes (fault tests cut the
    connection meanwhile); absent means none."""
    try:
        return max(0.0, float((paths.state_dir() / "backup_delay_ms").read_text().strip() or 0) / 1000)
    except (OSError, ValueError):
        return 0.0


def _global_lock(t: task.Task):
    """VZDump.pm getlock: one backup job per node (`/var/run/vzdump.lock`)."""
    paths.private_dir().mkdir(parents=True, exist_ok=True)
    fh = open(paths.private_dir() / "vzdump.lock", "a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        t.log("INFO: trying to get global lock - waiting...")
        fcntl.flock(fh, fcntl.LOCK_EX)
        t.log("INFO: got global lock")
    return fh


def _set_lock(vmid: int, lock: str | None) -> None:
    """AbstractConfig set_lock / remove_lock."""
    with conf_mod.lock_config(vmid):
        conf = conf_mod.load(vmid)
        if lock is None:
            if conf.get("lock") == "backup":
                conf.pop("lock")
                conf_mod.write(conf)
            return
        conf_mod.check_lock(conf)
        conf["lock"] = lock
        conf_mod.write(conf)


def _stop(vmid: int) -> None:
    """LXC.pm vm_stop (the CT carries the backup lock; vzdump stops it anyway)."""
    runstate.mark_stopped(vmid)


def _pct_conf(conf: CTConfig) -> str:
    """LXC.pm assemble: the config without lock, snapshots, parent and pending."""
    values = {k: v for k, v in conf.main.values.items() if k not in ("lock", "parent")}
    return conf_mod.render(CTConfig(vmid=conf.vmid, main=Section(values, list(conf.main.lxc))))


def _firewall(vmid: int) -> str:
    fw = paths.etc_pve() / "firewall" / f"{vmid}.fw"
    return fw.read_text() if fw.is_file() else ""


def main(argv: list[str]) -> int:
    paths.ensure_layout()
    try:
        params = cli_args.parse(COMMAND, argv)
        if params.get("notes-template") is not None:
            try:
                verify_notes_template(params["notes-template"])
            except ValueError as err:
                raise ParamError({"notes-template": str(err)})
        if params.get("prune-backups"):
            parse_prune(params["prune-backups"], "CLI parameters")
        if not (params.get("vmid") or params.get("all") == "1" or params.get("stop") == "1" or params.get("pool")):
            raise ParamError({"vmid": "property is missing"})
        if params.get("all") == "1" or params.get("pool") or params.get("exclude"):
            raise PveError("--all, --pool and --exclude are not supported by the simulator")
        job = Job(params)
    except ParamError as err:
        err.usage = "vzdump {<vmid>} [OPTIONS]"
        sys.stderr.write(err.render())
        return err.exit_code
    except PveError as err:
        sys.stderr.write(err.render())
        return err.exit_code
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, _interrupt)
    return task.run(job.run)
