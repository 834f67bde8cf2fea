"""Entry point: `python -m sim.pve <tool> args...`.

Every invocation is appended to `$SIM_STATE/tools.log` as `{"ts", "tool", "argv"}` with argv
exactly as received.
"""

from __future__ import annotations

import json
import os
import sys
import time

from . import paths

TOOLS = ("pct", "pvesm", "pvesh", "pveversion", "lxc-info", "pveam")


def log_invocation(tool: str, argv: list[str]) -> None:
    state = paths.state_dir()
    state.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"ts": time.time(), "tool": tool, "argv": argv}) + "\n"
    fd = os.open(paths.tools_log(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8", errors="surrogateescape"))
    finally:
        os.close(fd)


def dispatch(tool: str, argv: list[str]) -> int:
    if tool == "pct":
        from .pct import main
    elif tool == "pvesm":
        from .pvesm import main
    elif tool == "pvesh":
        from .pvesh import main
    elif tool == "pveversion":
        from .pveversion import main
    elif tool == "lxc-info":
        from .lxcinfo import main
    elif tool == "pveam":
        from .pveam import main
    else:
        sys.stderr.write(f"sim.pve: unknown tool '{tool}' (known: {', '.join(TOOLS)})\n")
        return 2
    return main(argv)


def main() -> int:
    if len(sys.argv) < 2:
        sys.stderr.write(f"usage: python -m sim.pve <{'|'.join(TOOLS)}> args...\n")
        return 2
    tool, argv = sys.argv[1], sys.argv[2:]
    log_invocation(tool, argv)
    code = dispatch(tool, argv)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
