"""Run command lines through a real POSIX shell (dash, /bin/sh on Debian and PVE) with every
host tool replaced by a shell function that records its arguments, byte for byte.

A command line is evaluated exactly as the host's `sh -c` would parse it; a `sh -c SCRIPT`
inside it is evaluated the same way. The functions print what the scripts need to go on
(`status: running`, a storage path) and do nothing else; `touch` and redirections are real,
so a command that escaped its quoting would leave the canary file. Many command lines run
in one shell process (each in its own subshell) to keep 10,000 cases fast.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# Linux refuses one exec argument of MAX_ARG_STRLEN (32 pages) bytes or more, NUL included;
# sshd hands the whole command line to the user's shell as one argument.
MAX_ARG_BYTES = 32 * 4096 - 1
_BATCH_BYTES = 1_200_000

STUBBED = ("pct", "pvesm", "pvesh", "pveam", "perl", "skopeo", "midclt", "python3", "sudo", "grep", "head",
           "basename", "mv", "stat", "rm", "tail", "cat", "sh", "test", "command", "awk", "curl", "sleep", "vzdump")

PRELUDE = r"""
_log() { printf '%s\0' "$#" "$@" >> "$HF_LOG"; }
pct() { _log pct "$@"; case "$1" in status) echo "status: running"; echo "uptime: 60";; config) echo "hostname: x";; esac; return 0; }
pvesm() { _log pvesm "$@"; case "$1" in path) echo "$HF_WORK/archive.tar";; esac; return 0; }
pvesh() { _log pvesh "$@"; echo 100; }
pveam() { _log pveam "$@"; }
perl() { _log perl "$@"; }
skopeo() { _log skopeo "$@"; }
midclt() { _log midclt "$@"; echo '[]'; }
python3() { _log python3 "$@"; echo 7; }
sudo() { _log sudo "$@"; }
grep() { _log grep "$@"; case " $* " in *" -l"*) return 1;; esac; return 0; }
head() { _log head "$@"; }
basename() { _log basename "$@"; }
mv() { _log mv "$@"; }
stat() { _log stat "$@"; echo "1 $3"; }
test() { _log test "$@"; return 0; }   # the preflight's checks (providers/hosts/preflight.py) pass
command() { _log command "$@"; return 0; }
awk() { _log awk "$@"; echo "images,rootdir,vztmpl"; }
rm() { _log rm "$@"; }
tail() { _log tail "$@"; }
cat() { _log cat "$@"; }
curl() { _log curl "$@"; echo 1; return 0; }   # the health gate's probe connects (providers/hosts/health.py)
sleep() { _log sleep "$@"; }
vzdump() { _log vzdump "$@"; }
sh() {
  _log sh "$@"
  if [ "$#" -ne 2 ] || [ "$1" != "-c" ]; then return 127; fi
  ( eval "$2" )
}
"""

DRIVER = r"""
for _hf_cl in "$@"; do
  _log "@@case"
  ( eval "$_hf_cl" ) </dev/null >/dev/null 2>&1
done
"""


@dataclass
class Outcome:
    calls: list = field(default_factory=list)   # [[tool, arg, ...], ...] in the order they ran
    leftovers: list = field(default_factory=list)  # files the case left in the work folder


def _parse_log(data: bytes) -> list:
    """The log -> one list of calls per case."""
    words = data.split(b"\0")
    cases: list = []
    i = 0
    while i < len(words) - 1:
        count = int(words[i])
        call = [w.decode("utf-8", errors="surrogateescape") for w in words[i + 1:i + 1 + count]]
        i += 1 + count
        if call == ["@@case"]:
            cases.append([])
        else:
            cases[-1].append(call)
    return cases


class ShellSim:
    """Collects command lines, runs them in batches, returns what each one ran."""

    def __init__(self, work: Path):
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.runs = 0

    def run(self, command_lines: list) -> list:
        """[Outcome] for each command line (each must fit in one exec argument)."""
        outcomes = []
        batch, size = [], 0
        for line in command_lines:
            if len(line.encode()) >= MAX_ARG_BYTES:
                raise ValueError(f"a command line of {len(line.encode())} bytes cannot reach any host")
            if batch and size + len(line.encode()) > _BATCH_BYTES:
                outcomes += self._batch(batch)
                batch, size = [], 0
            batch.append(line)
            size += len(line.encode()) + 1
        if batch:
            outcomes += self._batch(batch)
        return outcomes

    def _batch(self, lines: list) -> list:
        with tempfile.TemporaryDirectory(dir=self.work) as tmp:
            cwd = Path(tmp) / "cwd"
            cwd.mkdir()
            log = Path(tmp) / "calls.log"
            log.touch()
            env = {"PATH": "/usr/bin:/bin", "HF_LOG": str(log), "HF_WORK": str(cwd), "LC_ALL": "C.UTF-8",
                   "HOME": str(cwd)}
            subprocess.run(["/bin/sh", "-c", PRELUDE + DRIVER, "sh", *lines], cwd=cwd, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=120, check=False)
            self.runs += 1
            cases = _parse_log(log.read_bytes())
            leftovers = sorted(os.listdir(cwd))
        if len(cases) != len(lines):
            raise AssertionError(f"the shell ran {len(cases)} of {len(lines)} command lines")
        # Leftovers can only be told apart per batch; a clean batch is clean for each case.
        return [Outcome(calls, leftovers) for calls in cases]
