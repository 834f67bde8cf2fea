"""Localized messages of the host's own programs: `python -m sim.localized TOOL ARGS...`.

A host whose locale is not C (its /etc/default/locale, see sim/shell.py) gets coreutils'
messages translated, as Debian's coreutils (gettext, `LC_ALL` > `LC_MESSAGES` > `LANG`) prints
them when the language's translations are installed. The simulator knows one language,
German, and only the messages homefleet's commands can meet. The real tool runs with
LC_ALL=C; its stderr is translated when the caller's locale asks for German.
Standard library only: it runs for every `stat` on a simulated host.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

REAL = {"stat": "/usr/bin/stat"}

# (pattern of the C message, German text); from Debian's coreutils de.po and glibc's de.po
GERMAN = [
    (re.compile(r"^(\w+): cannot statx? (.*): No such file or directory$"),
     r"\1: Aufruf von statx für \2 nicht möglich: Datei oder Verzeichnis nicht gefunden"),
    (re.compile(r"^(\w+): cannot stat (.*): Permission denied$"),
     r"\1: Aufruf von stat für \2 nicht möglich: Keine Berechtigung"),
]


def messages_language(env=os.environ) -> str:
    for key in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if env.get(key):
            return env[key]
    return "C"


def translate(text: str, language: str) -> str:
    if not language.startswith("de"):
        return text
    out = []
    for line in text.split("\n"):
        for pattern, german in GERMAN:
            if pattern.match(line):
                line = pattern.sub(german, line)
                break
        out.append(line)
    return "\n".join(out)


def main(argv: list[str]) -> int:
    tool, args = argv[0], argv[1:]
    proc = subprocess.run([tool, *args], executable=REAL[tool], env={**os.environ, "LC_ALL": "C"},
                          stderr=subprocess.PIPE, check=False)
    err = proc.stderr.decode("utf-8", "replace")
    if err:
        sys.stderr.write(translate(err, messages_language()))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
