"""`python -m bench.report FILE`: a markdown table of one `python -m bench` run's JSON lines
(every tool side by side, homefleet's ratios and its overhead over the floor)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

NAMES = {"up": "up", "noop": "no-change up", "refresh": "refresh", "update": "one-app update", "destroy": "destroy"}


def _cell(entry: dict, tool: str) -> str:
    fig = entry.get(tool)
    return f"{fig['wall_s']:.2f} ({fig['cpu_s']:.2f})" if fig else ""


def _counts(entry: dict, key: str) -> str:
    return " / ".join(str(entry[t].get(key, "")) for t in ("homefleet", "baseline", "ansible") if t in entry)


def table(entries: list) -> str:
    rows = ["| scenario | homefleet s (CPU s) | floor s (CPU s) | overhead s (CPU s) | baseline s (CPU s) "
            "| Ansible s (CPU s) | hf / baseline | hf / Ansible | commands hf / bl / Ansible "
            "| connections hf / bl / Ansible |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        over = e.get("overhead")
        rows.append(" | ".join([
            f"| {NAMES.get(e['scenario'], e['scenario'])}", _cell(e, "homefleet"), _cell(e, "floor"),
            f"{over['wall_s']:+.2f} ({over['cpu_s']:+.2f})" if over else "",
            _cell(e, "baseline"), _cell(e, "ansible"),
            str(e.get("ratio", {}).get("wall_s", "")), str(e.get("ratio_ansible", {}).get("wall_s", "")),
            _counts(e, "commands"), _counts(e, "ssh_connections")]) + " |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(table([json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()]), end="")
