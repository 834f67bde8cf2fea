"""Acknowledged compose warnings: the stack says it has read a warning, and it is not shown again.

`acknowledge:` on an app lists key paths of its compose file (`services.db.healthcheck`), with `*`
as a wildcard (`services.*.restart`). A warning whose every key is acknowledged is dropped; one that
names several keys keeps the others. A pattern that matches no warning is itself a warning, so an
acknowledgement does not outlive the change it was written for. Errors cannot be acknowledged.
"""

from __future__ import annotations

from fnmatch import fnmatchcase


def filter_warnings(lines: list, display: str, patterns: list, app_key: str) -> list:
    """The warning lines of one compose file (`display`) without the acknowledged keys."""
    if not patterns:
        return lines
    used: set = set()
    out = []
    prefix = f"{display}: "
    for line in lines:
        if not line.startswith(prefix):
            out.append(line)
            continue
        where, sep, rest = line[len(prefix):].partition(": ")
        keys = where.split(", ")
        kept = []
        for key in keys:
            bare = key.split(" (", 1)[0]
            hits = [p for p in patterns if fnmatchcase(bare, p)]
            used.update(hits)
            if not hits:
                kept.append(key)
        if kept:
            out.append(prefix + ", ".join(kept) + sep + rest if kept != keys else line)
    for pattern in patterns:
        if pattern not in used:
            out.append(f"{app_key}.acknowledge: {pattern!r} matches no warning of {display}; remove it")
    return out
