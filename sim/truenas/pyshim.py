"""`python3` on a simulated TrueNAS host: the venv's Python, with the simulated
`truenas_api_client` (sim/truenas/pylib) importable, as the real one is on a NAS
(`/usr/bin/midclt` is that package's console script `truenas_api_client:main`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PYLIB = Path(__file__).resolve().parent / "pylib"
REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PYLIB), str(REPO)])
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *argv], env)
    return 127
