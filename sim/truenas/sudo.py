"""`sudo`: enough of it for `sudo -n CMD ARGS...` on a simulated TrueNAS host.

Everyone on a simulated host is root, so `-n` (never prompt) always succeeds and the
command runs with the caller's PATH (a real NOPASSWD rule for /usr/bin/midclt behaves the
same for `sudo -n midclt ...`). `$SIM_STATE/sudo_denied` makes every call fail the way
sudo does without a NOPASSWD rule: `sudo: a password is required`, exit 1.
"""

from __future__ import annotations

import os
import shutil
import sys

from . import paths


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
    sys.stdout.flush()
    try:
        os.execv(program, [args[0], *args[1:]])
    except OSError:
        sys.stderr.write(f"sudo: {args[0]}: command not found\n")
        return 1
