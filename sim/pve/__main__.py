"""Entry point: `python -m sim.pve <tool> args...`.

Every invocation is appended to `$SIM_STATE/tools.log` as `{"ts", "tool", "argv"}` with argv
exactly as received.
"""

from __future__ import annotations

import sys

from . import paths
from .. import toollog

TOOLS = ("pct", "pvesm", "pvesh", "pveversion", "lxc-info", "pveam", "pveum", "curl", "vzdump")


def log_invocation(tool: str, argv: list[str]) -> None:
    toollog.log_invocation(paths.tools_log(), tool, argv)


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
    elif tool == "pveum":
        from .pveum import main
    elif tool == "curl":
        from .curl import main
    elif tool == "vzdump":
        from .vzdump import main
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
