"""`pct exec <vmid> -- <command> [args]`: a handful of commands, run against the CT's files.

Paths inside the CT resolve through the rootfs volume, volume mount points and bind mounts
(the deepest mount point wins). Supported: cat, ls, test, env, echo, true, false, pwd, id,
hostname (the name the CT got at its start), `sh -c` / `/bin/sh -c` of these joined by `&&`,
`||`, `;` and `|` into `grep [-q] [-v] PATTERN` (a compose `CMD-SHELL` healthcheck), `exit N`, `curl` and `wget` to localhost
(answered by the CT's simulated app, sim/pve/probe.py), the commands the image declares in its
entrypoint.json `commands` ({name: {exit, stdout, stderr}}, e.g. postgres' `pg_isready`),
and `getent hosts NAME`, answered from the CT's own /etc/hosts only: an app container has no
resolver of its own for its peers' names (PVE writes no /etc/hosts for `ostype: unmanaged`).

`pct push <vmid> <file> <destination> [--perms]` writes a host file into a running CT, as
pve-container's src/PVE/CLI/pct.pm `push` does ("can only push files to a running CT"),
resolving the destination inside the CT (here: through its mounts).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path, PurePosixPath

from . import conf as conf_mod
from . import appstart, paths, probe, runstate, storage
from .ct_ops import mount_points
from .errors import PveError


class Container:
    def __init__(self, conf: conf_mod.CTConfig):
        self.conf = conf
        cfg = storage.load_config()
        self.mounts: list[tuple[str, Path]] = []
        for _key, mp in mount_points(conf.main.values):
            if mp["type"] == "volume":
                try:
                    host = storage.volume_path(mp["volume"], cfg)
                except PveError:
                    continue
            else:
                host = paths.host_path(mp["volume"])
            self.mounts.append((str(PurePosixPath("/") / mp["mp"].lstrip("/")), host))
        self.mounts.sort(key=lambda item: len(item[0]), reverse=True)

    def host_path(self, ct_path: str) -> Path:
        path = str(PurePosixPath("/") / os.path.normpath("/" + ct_path).lstrip("/"))
        for mount, host in self.mounts:
            if path == mount or path.startswith(mount.rstrip("/") + "/"):
                rest = path[len(mount):].lstrip("/")
                return host / rest if rest else host
        raise FileNotFoundError(ct_path)

    def env(self) -> list[str]:
        """The runtime env (`env`, lxc.environment.runtime), then raw `lxc.environment` lines, which LXC also
        passes to the container's processes (lxc.container.conf(5))."""
        value = self.conf.get("env") or ""
        raw = [v for k, v in self.conf.main.lxc if k == "lxc.environment"]
        return [v for v in value.split("\0") if v] + raw


def _out(text: str) -> None:
    sys.stdout.write(text)


def _err(text: str) -> None:
    sys.stderr.write(text)


def run_command(ct: Container, argv: list[str], stdin: str | None = None) -> int:
    cmd, args = argv[0], argv[1:]
    if os.path.basename(cmd) == "grep" and stdin is not None:
        return _grep(args, stdin)
    if cmd in ("true", ":"):
        return 0
    if cmd == "false":
        return 1
    if cmd == "echo":
        _out(" ".join(args) + "\n")
        return 0
    if cmd == "pwd":
        _out("/\n")
        return 0
    if cmd == "hostname":  # the UTS name the CT got at its start
        _out((runstate.info(ct.conf.vmid) or {}).get("hostname", "") + "\n")
        return 0
    if cmd == "id":
        _out("uid=0(root) gid=0(root) groups=0(root)\n")
        return 0
    if cmd == "env":
        for var in ct.env():
            _out(var + "\n")
        return 0
    if cmd == "cat":
        rc = 0
        for name in args:
            try:
                sys.stdout.flush()
                sys.stdout.buffer.write(ct.host_path(name).read_bytes())
            except IsADirectoryError:
                _err(f"cat: {name}: Is a directory\n")
                rc = 1
            except (FileNotFoundError, NotADirectoryError):
                _err(f"cat: {name}: No such file or directory\n")
                rc = 1
        return rc
    if cmd == "ls":
        targets = [a for a in args if not a.startswith("-")] or ["/"]
        rc = 0
        for name in targets:
            try:
                host = ct.host_path(name)
                if host.is_dir():
                    for entry in sorted(os.listdir(host)):
                        _out(entry + "\n")
                elif host.exists() or host.is_symlink():
                    _out(name + "\n")
                else:
                    raise FileNotFoundError(name)
            except FileNotFoundError:
                _err(f"ls: cannot access '{name}': No such file or directory\n")
                rc = 2
        return rc
    if cmd in ("test", "["):
        if cmd == "[":
            args = args[:-1] if args and args[-1] == "]" else args
        if len(args) != 2 or args[0] not in ("-e", "-f", "-d", "-s"):
            _err(f"sim: unsupported test expression: {' '.join(args)}\n")
            return 2
        try:
            host = ct.host_path(args[1])
        except FileNotFoundError:
            return 1
        ok = {"-e": host.exists(), "-f": host.is_file(), "-d": host.is_dir(),
              "-s": host.is_file() and host.stat().st_size > 0}[args[0]]
        return 0 if ok else 1
    if cmd == "getent":
        return _getent(ct, args)
    name = os.path.basename(cmd)
    if name in ("sh", "bash", "ash") and len(args) >= 2 and args[0] == "-c":
        return _shell(ct, args[1])
    if name == "exit":
        return int(args[0]) if args and args[0].isdigit() else 0
    declared = ((appstart.read_behaviour(ct.conf) or {}).get("commands") or {}).get(name)
    if declared is not None:
        _out(declared.get("stdout", "") + ("\n" if declared.get("stdout") else ""))
        _err(declared.get("stderr", "") + ("\n" if declared.get("stderr") else ""))
        return int(declared.get("exit", 0))
    if name == "curl":
        return _curl(ct, args)
    if name == "wget":
        return _wget(ct, args)
    _err(f"sim: command not available in the simulated container: {cmd}\n")
    return 127


def _shell(ct: Container, script: str) -> int:
    """`sh -c SCRIPT` for simple lists: words, `&&`, `||`, `;` (no pipes or expansions)."""
    try:
        lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError as exc:
        _err(f"sh: syntax error: {exc}\n")
        return 2
    rc, argv, op = 0, [], None
    for token in tokens + [";"]:
        if token not in ("&&", "||", ";"):
            argv.append(token)
            continue
        if argv and (op is None or op == ";" or (op == "&&" and rc == 0) or (op == "||" and rc != 0)):
            if argv[0] == "exit":
                return int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else rc
            rc = _pipeline(ct, argv)
        argv, op = [], token
    return rc


def _pipeline(ct: Container, argv: list[str]) -> int:
    """`a | b | c`: each stage's stdout is the next one's stdin; the last stage's status."""
    stages, cur = [], []
    for token in argv:
        if token == "|":
            stages.append(cur)
            cur = []
        else:
            cur.append(token)
    stages.append(cur)
    text, rc = None, 0
    for index, stage in enumerate(stages):
        if not stage:
            _err("sh: syntax error: unexpected \"|\"\n")
            return 2
        last = index == len(stages) - 1
        sys.stdout.flush()
        if last:
            rc = run_command(ct, stage, text)
            sys.stdout.flush()
        else:
            import io
            real, sys.stdout = sys.stdout, io.StringIO()
            try:
                rc = run_command(ct, stage, text)
                text = sys.stdout.getvalue()
            finally:
                sys.stdout = real
    return rc


def _grep(args: list[str], text: str) -> int:
    """grep [-q] [-v] [-i] [-E|-F] PATTERN over `text`: exit 0 when a line is selected."""
    import re
    flags = [a for a in args if a.startswith("-") and len(a) > 1]
    words = [a for a in args if not (a.startswith("-") and len(a) > 1)]
    if not words:
        _err("Usage: grep [OPTION]... PATTERNS [FILE]...\n")
        return 2
    letters = "".join(f[1:] for f in flags if not f.startswith("--"))
    pattern = re.escape(words[0]) if "F" in letters else words[0]
    found = [line for line in text.splitlines()
             if bool(re.search(pattern, line, re.I if "i" in letters else 0)) != ("v" in letters)]
    if "q" not in letters and "--quiet" not in flags:
        for line in found:
            _out(line + "\n")
    return 0 if found else 1


def _local(ct: Container):
    def conf_for_host(host: str):
        return (True, ct.conf) if host in ("localhost", "127.0.0.1", "::1") else (False, None)
    return conf_for_host


def _curl(ct: Container, args: list[str]) -> int:
    from .curl import fetch
    rc = fetch(args, _local(ct))
    if rc < 0:
        _err("curl: (6) Could not resolve host (the simulated CT reaches only localhost)\n")
        return 6
    return rc


def _wget(ct: Container, args: list[str]) -> int:
    """busybox wget: `-q`, `-O FILE|-`, `--spider`; exit 1 on an error (busybox has one code)."""
    quiet = "-q" in args or "--quiet" in args
    spider = "--spider" in args
    out = None
    urls = []
    i = 0
    while i < len(args):
        if args[i] in ("-O", "--output-document"):
            out = args[i + 1] if i + 1 < len(args) else None
            i += 2
            continue
        if args[i].startswith("-O") and len(args[i]) > 2:
            out = args[i][2:]
        elif not args[i].startswith("-"):
            urls.append(args[i])
        i += 1
    from urllib.parse import urlsplit
    parts = urlsplit(urls[0] if urls and "://" in urls[0] else "http://" + (urls[0] if urls else ""))
    if parts.hostname not in ("localhost", "127.0.0.1"):
        _err(f"wget: bad address '{parts.hostname}'\n")
        return 1
    ans = probe.answer(ct.conf, parts.port or 80, parts.path or "/")
    if ans.kind != "http":
        _err(f"wget: can't connect to remote host ({parts.hostname}): Connection refused\n")
        return 1
    if ans.status >= 400:
        _err(f"wget: server returned error: HTTP/1.1 {ans.status} {probe.REASONS.get(ans.status, 'Error')}\n")
        return 1
    if not quiet:
        _err(f"Connecting to {parts.netloc} ({parts.hostname}:{parts.port or 80})\n")
    if not spider:
        if out in (None, "-"):
            _out(ans.body)
        else:
            ct.host_path(out).write_text(ans.body)
    return 0


def _getent(ct: Container, args: list[str]) -> int:
    """glibc's `getent hosts NAME`: the first /etc/hosts line naming it; exit 2 when none does."""
    if len(args) != 2 or args[0] != "hosts":
        _err("sim: only `getent hosts NAME` is simulated\n")
        return 1
    try:
        text = ct.host_path("/etc/hosts").read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return 2
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and args[1] in fields[1:]:
            _out(f"{fields[0]:<15} {' '.join(fields[1:])}\n")
            return 0
    return 2


def push_file(params: dict) -> int:
    vmid = int(params["vmid"])
    conf = conf_mod.load(vmid)
    if not runstate.is_running(vmid):
        raise PveError("can only push files to a running CT")
    source = Path(params["file"])
    try:
        data = source.read_bytes()
    except OSError:
        raise PveError(f"failed to open {params['file']} for reading")
    dest = Container(conf).host_path(params["destination"])
    if dest.is_symlink():  # pct push opens the destination inside the CT: a symlink cannot lead out of it
        dest.unlink()
    if not dest.parent.is_dir():
        raise PveError(f"failed to create file: {params['destination']}: No such file or directory")
    dest.write_bytes(data)
    perms = params.get("perms")
    if perms is not None:
        dest.chmod(int(perms, 16) if str(perms).startswith("0x") else int(str(perms), 8))
    return 0


def exec_command(params: dict) -> int:
    vmid = int(params["vmid"])
    conf = conf_mod.load(vmid)
    argv = params.get("extra-args") or []
    if not argv:
        raise PveError("missing command")
    if not runstate.is_running(vmid):
        raise PveError(f"container '{vmid}' not running!")
    return run_command(Container(conf), list(argv))
