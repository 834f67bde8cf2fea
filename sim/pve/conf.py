"""`/etc/pve/lxc/<vmid>.conf`: parsing, writing, locking (pve-container `LXC/Config.pm`).

File layout (written by `render`):
  1. `#<encoded line>` per description line;
  2. `key: value` lines, sorted (no `env`);
  3. `lxc.environment.runtime: K=V`, one per variable of `env`;
  4. the other `lxc.*` lines in stored order;
  5. `[pve:pending]` with the same layout (and `delete: a,b`), then `[snapshot]` sections.
On read, `lxc.environment.runtime` lines are accumulated into `env` (NUL-separated).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import paths
from .ct_schema import CONFDESC
from .errors import PveError
from .schema import FormatError, check_format, parse_boolean

ENV_KEY = "lxc.environment.runtime"
LOCK_TIMEOUT = float(os.environ.get("SIM_PVE_LOCK_TIMEOUT") or 10)  # PVE waits 10 s


# --- description encoding (pve-common encode_text / decode_text) ------------------------------

def encode_text(text: str) -> str:
    out = []
    for byte in text.encode("utf-8"):
        if 0x20 <= byte <= 0x24 or 0x26 <= byte <= 0x39 or 0x3B <= byte <= 0x7E:
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def decode_text(text: str) -> str:
    raw = re.sub(rb"%([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]),
                 text.encode("utf-8"))
    return raw.decode("utf-8", errors="replace")


# --- the config object -----------------------------------------------------------------------

@dataclass
class Section:
    values: dict[str, str] = field(default_factory=dict)
    lxc: list[tuple[str, str]] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not self.values and not self.lxc


@dataclass
class CTConfig:
    vmid: int
    main: Section = field(default_factory=Section)
    pending: Section = field(default_factory=Section)
    snapshots: dict[str, Section] = field(default_factory=dict)
    digest: str = ""

    # convenience access to the active values
    def get(self, key: str, default: str | None = None) -> str | None:
        return self.main.values.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.main.values

    def __getitem__(self, key: str) -> str:
        return self.main.values[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.main.values[key] = value

    def pop(self, key: str, default: str | None = None) -> str | None:
        return self.main.values.pop(key, default)

    # -- pending delete helpers (AbstractConfig) --
    def pending_delete(self) -> dict[str, bool]:
        res: dict[str, bool] = {}
        for item in re.split(r"[,;\s]+", self.pending.values.get("delete", "")):
            if not item:
                continue
            force = item.startswith("!")
            res[item.lstrip("!")] = force
        return res

    def _set_pending_delete(self, entries: dict[str, bool]) -> None:
        text = ",".join(("!" if force else "") + key for key, force in entries.items())
        if text:
            self.pending.values["delete"] = text
        else:
            self.pending.values.pop("delete", None)

    def add_to_pending_delete(self, key: str, force: bool = False) -> None:
        entries = self.pending_delete()
        self.pending.values.pop(key, None)
        entries[key] = force
        self._set_pending_delete(entries)

    def remove_from_pending_delete(self, key: str) -> None:
        entries = self.pending_delete()
        entries.pop(key, None)
        self._set_pending_delete(entries)

    def cleanup_pending(self) -> None:
        for key in list(self.pending.values):
            if key == "delete":
                continue
            if key in self.main.values and self.pending.values[key] == self.main.values[key]:
                del self.pending.values[key]
        entries = {k: f for k, f in self.pending_delete().items() if k in self.main.values}
        self._set_pending_delete(entries)

    def merged(self) -> dict[str, str]:
        """Active values with pending changes applied and pending deletions hidden."""
        res = dict(self.main.values)
        for key, value in self.pending.values.items():
            if key != "delete":
                res[key] = value
        for key in self.pending_delete():
            res.pop(key, None)
        return res

    def add_unused_volume(self, volid: str) -> str:
        for key, value in self.main.values.items():
            if re.fullmatch(r"unused\d+", key) and value == volid:
                return key
        for i in range(256):
            key = f"unused{i}"
            if key not in self.main.values and key not in self.pending.values:
                self.main.values[key] = volid
                return key
        raise PveError("Too many unused volumes - please delete them first.")


# --- parse / render ----------------------------------------------------------------------------

def _check_value(vmid: int, key: str, value: str) -> str:
    prop = CONFDESC.get(key)
    if prop is None:
        raise FormatError(f"unknown setting '{key}'\n")
    if prop.type == "boolean":
        b = parse_boolean(value)
        if b is None:
            raise FormatError(f"type check ('boolean') failed - got '{value}'\n")
        return str(b)
    if prop.type == "integer":
        if not re.fullmatch(r"\d+", value):
            raise FormatError(f"type check ('integer') failed - got '{value}'\n")
        return str(int(value))
    if prop.type == "number":
        if not re.fullmatch(r"\d+(\.\d+)?", value):
            raise FormatError(f"type check ('number') failed - got '{value}'\n")
        return value
    if prop.format is not None and key != "env":
        check_format(prop.format, value, key)
    return value


def parse(vmid: int, raw: str) -> CTConfig:
    conf = CTConfig(vmid=vmid, digest=hashlib.sha1(raw.encode("utf-8")).hexdigest())
    section = conf.main
    section_name = ""
    descr = ""
    env: list[str] = []

    def close_section() -> None:
        nonlocal descr, env
        if descr:
            section.values["description"] = descr
        if env:
            section.values["env"] = "\0".join(env)
        descr = ""
        env = []

    for line in raw.split("\n"):
        if re.fullmatch(r"\s*", line):
            continue
        if re.fullmatch(r"(?i)\[pve:pending\]\s*", line):
            close_section()
            section, section_name = conf.pending, "pending"
            continue
        if m := re.fullmatch(r"(?i)\[([a-z][a-z0-9_\-]+)\]\s*", line):
            close_section()
            section_name = m.group(1)
            section = conf.snapshots.setdefault(section_name, Section())
            continue
        if m := re.fullmatch(r"#(.*)", line):
            descr += decode_text(m.group(1)) + "\n"
            continue
        if m := re.fullmatch(r"(lxc\.[a-z0-9_\-.]+)(?::|\s*=)\s*(.*?)\s*", line):
            if m.group(1) == ENV_KEY:
                env.append(m.group(2))
            else:
                section.lxc.append((m.group(1), m.group(2)))
        elif m := re.fullmatch(r"(description):\s*(.*\S)\s*", line):
            descr += decode_text(m.group(2))
        elif m := re.fullmatch(r"delete:\s*(.*\S)\s*", line):
            if section_name == "pending":
                section.values["delete"] = m.group(1)
            else:
                _warn(f"vm {vmid} - property 'delete' is only allowed in [pve:pending]")
        elif m := re.fullmatch(r"([a-z][a-z_]*\d*):\s*(.+?)\s*", line):
            key, value = m.group(1), m.group(2)
            if key in ("snapstate", "parent", "snaptime"):
                section.values[key] = value
                continue
            try:
                value = _check_value(vmid, key, value)
            except FormatError as err:
                _warn(f"vm {vmid} - unable to parse value of '{key}' - {str(err).rstrip()}")
            section.values[key] = value
        else:
            _warn(f"vm {vmid} - unable to parse config: {line}")
    close_section()
    return conf


def _render_section(section: Section) -> str:
    # Perl's split drops trailing empty fields but keeps inner ones
    lines = (section.values.get("description") or "").split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    out = ["#" + encode_text(line) + "\n" for line in lines]
    for key in sorted(section.values):
        if key in ("description", "env"):
            continue
        value = section.values[key]
        if "\n" in value:
            raise PveError(f"detected invalid newline inside property '{key}'")
        out.append(f"{key}: {value}\n")
    env = section.values.get("env")
    if env:
        for var in env.split("\0"):
            if "\n" in var:
                raise PveError("detected invalid newline inside property 'env'")
            out.append(f"{ENV_KEY}: {var}\n")
    for key, value in section.lxc:
        out.append(f"{key}: {value}\n")
    return "".join(out)


def render(conf: CTConfig) -> str:
    raw = _render_section(conf.main)
    if not conf.pending.is_empty():
        raw += "\n[pve:pending]\n" + _render_section(conf.pending)
    for name in sorted(conf.snapshots):
        raw += f"\n[{name}]\n" + _render_section(conf.snapshots[name])
    return raw


def _warn(message: str) -> None:
    sys.stderr.write(message + "\n")


# --- files ----------------------------------------------------------------------------------

def exists(vmid: int) -> bool:
    return paths.conf_path(vmid).exists()


def load(vmid: int) -> CTConfig:
    path = paths.conf_path(vmid)
    try:
        raw = path.read_text()
    except FileNotFoundError:
        raise PveError(f"Configuration file '{paths.cfs_conf_name(vmid)}' does not exist")
    return parse(vmid, raw)


def write(conf: CTConfig) -> None:
    path = paths.conf_path(conf.vmid)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = render(conf)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    tmp.write_text(raw)
    os.replace(tmp, path)
    conf.digest = hashlib.sha1(raw.encode("utf-8")).hexdigest()


def create_exclusive(conf: CTConfig) -> None:
    """Write a new config; fails if the file appeared meanwhile (O_EXCL)."""
    path = paths.conf_path(conf.vmid)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "w") as fh:
        fh.write(render(conf))


def destroy(vmid: int) -> None:
    try:
        paths.conf_path(vmid).unlink()
    except FileNotFoundError:
        pass


def list_vmids(node: str | None = None) -> list[int]:
    folder = paths.lxc_conf_dir(node)
    if not folder.is_dir():
        return []
    return sorted(int(p.stem) for p in folder.glob("*.conf") if p.stem.isdigit())


def cluster_vmids() -> dict[int, tuple[str, str]]:
    """vmid -> (node, 'lxc'|'qemu') for every guest config of the cluster."""
    res: dict[int, tuple[str, str]] = {}
    nodes = paths.nodes_dir()
    if not nodes.is_dir():
        return res
    for node in nodes.iterdir():
        for kind, sub in (("lxc", "lxc"), ("qemu", "qemu-server")):
            folder = node / sub
            if folder.is_dir():
                for p in folder.glob("*.conf"):
                    if p.stem.isdigit():
                        res[int(p.stem)] = (node.name, kind)
    return res


def check_vmid_unused(vmid: int) -> None:
    owner = cluster_vmids().get(vmid)
    if owner:
        node, kind = owner
        prefix = "CT" if kind == "lxc" else "VM"
        raise PveError(f"{prefix} {vmid} already exists on node '{node}'")


def check_lock(conf: CTConfig) -> None:
    lock = conf.get("lock")
    if lock:
        raise PveError(f"CT is locked ({lock})")


def check_protection(conf: CTConfig, prefix: str) -> None:
    if conf.get("protection") == "1":
        raise PveError(f"{prefix} - protection mode enabled")


@contextmanager
def lock_config(vmid: int, timeout: float = LOCK_TIMEOUT):
    """flock `/run/lock/lxc/pve-config-<vmid>.lock` (the lock the client shares)."""
    folder = paths.lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pve-config-{vmid}.lock"
    with open(path, "a") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise PveError(f"can't lock file '{path}' - got timeout")
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

