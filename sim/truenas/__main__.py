"""Entry point: `python -m sim.truenas <midclt|sudo|python3> args...`.

Every invocation is appended to `$SIM_STATE/tools.log` as `{"ts", "tool", "argv"}` with argv
exactly as received (as sim/pve does).
"""

from __future__ import annotations

import os
import sys

from . import paths
from .. import toollog

TOOLS = ("midclt", "sudo", "python3")


def log_invocation(tool: str, argv: list[str]) -> None:
    toollog.log_invocation(paths.tools_log(), tool, argv)
    if tool == "sudo" or not os.environ.get(paths.SUDO_ENV):
        return
    if os.environ.pop(paths.SUDO_DIRECT_ENV, None):
        return                               # the command sudo itself ran: logged by sudo
    from .sudo import log_event              # log_subcmds: what a sudo'd command executes
    log_event([tool, *argv], tool, subcommand=True)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in TOOLS:
        sys.stderr.write(f"usage: python -m sim.truenas <{'|'.join(TOOLS)}> args...\n")
        return 2
    tool, argv = sys.argv[1], sys.argv[2:]
    log_invocation(tool, argv)
    if tool == "python3":
        from .pyshim import main as run
    elif tool == "midclt":
        from .midclt import main as run
    else:
        from .sudo import main as run
    code = run(argv)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
