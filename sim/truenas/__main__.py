"""Entry point: `python -m sim.truenas <midclt|sudo> args...`.

Every invocation is appended to `$SIM_STATE/tools.log` as `{"ts", "tool", "argv"}` with argv
exactly as received (as sim/pve does).
"""

from __future__ import annotations

import json
import os
import sys
import time

from . import paths

TOOLS = ("midclt", "sudo")


def log_invocation(tool: str, argv: list[str]) -> None:
    paths.state_dir().mkdir(parents=True, exist_ok=True)
    line = json.dumps({"ts": time.time(), "tool": tool, "argv": argv}) + "\n"
    fd = os.open(paths.tools_log(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8", errors="surrogateescape"))
    finally:
        os.close(fd)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in TOOLS:
        sys.stderr.write(f"usage: python -m sim.truenas <{'|'.join(TOOLS)}> args...\n")
        return 2
    tool, argv = sys.argv[1], sys.argv[2:]
    log_invocation(tool, argv)
    if tool == "midclt":
        from .midclt import main as run
    else:
        from .sudo import main as run
    code = run(argv)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
