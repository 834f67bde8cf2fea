"""Every fake-tool invocation, appended to the host's tools.log exactly as received."""

import json
import os
import time
from pathlib import Path


def log_invocation(log_path: Path, tool: str, argv: list) -> None:
    """One JSON line; O_APPEND so concurrent tools never interleave within a line."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"ts": time.time(), "tool": tool, "argv": argv}) + "\n"
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8", errors="surrogateescape"))
    finally:
        os.close(fd)
