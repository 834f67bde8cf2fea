"""`sudo`: enough of it for `sudo -n CMD ARGS...` on a simulated TrueNAS host.

Everyone on a simulated host is root, so `-n` (never prompt) always succeeds and the
command runs with the caller's PATH (a real NOPASSWD rule behaves the same for
`sudo -n midclt ...`). `$SIM_STATE/sudo_denied` makes every call fail the way sudo does
without a NOPASSWD rule: `sudo: a password is required`, exit 1.

Logging as TrueNAS configures sudo (etc_files/local/sudoers.mako: `Defaults log_format=json`
and `Defaults log_subcmds`; syslog-ng forwards the events into the audit database): every
accepted command is one JSON event in `$SIM_STATE/sudo.log` with its full argv (`runargv`),
and so is every program the command itself executes (log_subcmds works through sudo's
intercept library, inherited by children). The fake passes `SIM_SUDO=1` down instead, and
every fake tool started under it logs its own argv as a sub-command (`__main__.py`).
Standard input is not logged (TrueNAS does not set `log_input`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

from . import paths


def log_event(argv: list, program: str, subcommand: bool = False) -> None:
    event = {"accept": {"command": program, "runargv": list(argv), "runuser": "root",
                        "submituser": os.environ.get("USER") or os.environ.get("LOGNAME") or "?",
                        "submit_time": {"seconds": int(time.time())}, "subcmd": subcommand}}
    line = json.dumps(event) + "\n"
    fd = os.open(paths.sudo_log(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8", errors="surrogateescape"))
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    args = list(argv)
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt == "--":
            break
        if opt not in ("-n", "--non-interactive"):
            sys.stderr.write(f"sudo: simulated sudo supports only -n, got {opt}\n")
            return 1
    if not args:
        sys.stderr.write("usage: sudo -n command [arg ...]\n")
        return 1
    if (paths.state_dir() / "sudo_denied").exists():
        sys.stderr.write("sudo: a password is required\n")
        return 1
    program = shutil.which(args[0]) or args[0]
    log_event(args, program)
    sys.stdout.flush()
    os.environ[paths.SUDO_ENV] = "1"
    os.environ[paths.SUDO_DIRECT_ENV] = "1"
    try:
        os.execv(program, [args[0], *args[1:]])
    except OSError:
        sys.stderr.write(f"sudo: {args[0]}: command not found\n")
        return 1
