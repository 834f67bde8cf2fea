"""The table `python -m homefleet.fleet` ends with: stack, result, changes, duration, then the
error of each failed stack and a count."""

from __future__ import annotations


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def table(outcomes: list) -> str:
    """stack | result | changes | duration, and the error of each failed stack under the table."""
    rows = [("stack", "result", "changes", "duration")]
    rows += [(o.stack, o.result, str(o.changes), _duration(o.duration)) for o in outcomes]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    out = []
    for i, row in enumerate(rows):
        out.append("  ".join(cell.ljust(w) if c < 2 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    failed = [o for o in outcomes if not o.ok]
    if failed:
        out.append("")
        out += [f"{o.stack}: {o.error}" for o in failed]
    ok = sum(1 for o in outcomes if o.ok)
    out += ["", f"{ok} of {len(outcomes)} stacks succeeded" + (f", {len(failed)} failed" if failed else "")]
    return "\n".join(out) + "\n"

