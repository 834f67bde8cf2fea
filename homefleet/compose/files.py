"""Which local files a compose file may make homefleet read (`env_file:`, `.env`, bind-mounted files).

A compose file comes from anywhere (an upstream project, a PR); the files it names are read on the
machine that runs homefleet and their values end up on a host. So a relative path must stay inside
the project folder — no `..` escape, no symlink out — and an absolute (or `~`) path is read only
when the stack opts in with `allowFilesOutsideProject: true` on the app (issue 18.3). Messages name
the path as written and never quote a file's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class ProjectFiles:
    root: Path                  # the project folder (or the packages folder for a catalog compose)
    allow_outside: bool = False
    app_key: str = ""           # e.g. "homefleet:apps.web", for the fix

    def check(self, base: Path, entry: str) -> tuple:
        """(the file's path, or None; (message, fix) when it may not be read, else None)."""
        if entry.startswith(("/", "~")):
            if not self.allow_outside:
                where = f" on {self.app_key}" if self.app_key else " on the app"
                return None, (f"{entry!r} is outside the project folder; homefleet reads files outside it only "
                              "when the stack allows it",
                              "Move the file into the project folder and write a path relative to the compose file, "
                              f"or set allowFilesOutsideProject: true{where}")
            return Path(entry).expanduser(), None
        path = base / entry
        try:
            real = path.resolve()
            root = self.root.resolve()
        except (OSError, RuntimeError):
            return None, (f"{entry!r} cannot be resolved", "Fix the path")
        if real != root and root not in real.parents:
            return None, (f"{entry!r} leads outside the project folder (through '..' or a symlink)",
                          "Keep the file inside the project folder")
        return path, None


def within(files: Optional[ProjectFiles], base: Path, entry: str) -> tuple:
    """`ProjectFiles.check`, or the path as written when no boundary is set (library use, tests)."""
    if files is None:
        return (Path(entry) if entry.startswith("/") else base / entry), None
    return files.check(base, entry)
