"""`python -m bench --plot FILE`: how time grows with the fleet. One bench run (bench/__main__.py
`run`, a fresh simulated fleet each) per size: 1 to 10 hosts at 3 apps each, then 3 to 20 apps
on one host, scenarios up, no-change up and one-app update (the fleet is dropped after); writes the plot (SVG or PNG, by FILE's suffix, matplotlib), FILE's stem + `.md`
(the table) and `.jsonl` (every line)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from . import fleet as bench_fleet

HOSTS = (1, 2, 4, 7, 10)
APPS = (3, 6, 10, 20)
SHOWN = ("up", "noop", "update")
STYLE = {"homefleet": "-", "ansible": "--", "floor": ":", "baseline": "-."}
COLOUR = {"up": "tab:blue", "noop": "tab:green", "update": "tab:red"}


def sizes(base: bench_fleet.Size, hosts: tuple = HOSTS, apps: tuple = APPS) -> list:
    """The hosts axis at 3 apps, then the apps axis on one host (1 x 3 is run once, for both)."""
    out = [("hosts", replace(base, hosts=h, apps=3)) for h in hosts]
    out += [("apps", replace(base, hosts=1, apps=a)) for a in apps if not (a == 3 and 1 in hosts)]
    return out


def _on_axis(axis: str, entry: dict) -> bool:
    return entry["apps_per_host"] == 3 if axis == "hosts" else entry["hosts"] == 1


def table(lines: list, tools: list) -> str:
    head = ("| sweep | hosts x apps | scenario | " + " | ".join(f"{t} s (CPU s)" for t in tools)
            + " | homefleet / Ansible | overhead s (CPU s) |")
    rows = [head, "|" + "---|" * (len(tools) + 5)]
    for axis, entry in lines:
        if entry["scenario"] not in SHOWN:
            continue
        cells = [f"{entry[t]['wall_s']:.2f} ({entry[t]['cpu_s']:.2f})" if t in entry else "" for t in tools]
        over = entry.get("overhead")
        extra = f"{over['wall_s']:+.2f} ({over['cpu_s']:+.2f})" if over else ""
        vs = entry.get("ratio_ansible", {}).get("wall_s")
        rows.append(f"| {axis} | {entry['hosts']} x {entry['apps_per_host']} | {entry['scenario']} | "
                    + " | ".join(cells) + f" | {vs if vs is not None else ''} | {extra} |")
    return "\n".join(rows) + "\n"


def plot(lines: list, tools: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, axis, key, label in ((axes[0], "hosts", "hosts", "hosts (3 apps each)"),
                                 (axes[1], "apps", "apps_per_host", "apps on one host")):
        for scenario in SHOWN:
            for tool in tools:
                points = [(e[key], e[tool]["wall_s"]) for _, e in lines
                          if _on_axis(axis, e) and e["scenario"] == scenario and tool in e]
                if points:
                    xs, ys = zip(*sorted(points))
                    ax.plot(xs, ys, STYLE.get(tool, "-"), color=COLOUR[scenario], marker="o", markersize=3,
                            label=f"{tool} {scenario}")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("wall time, s")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle("Time by fleet size (line style: tool; colour: scenario)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sweep(base: bench_fleet.Size, workdir: Path, tools: list, env: dict, parallel, out: Path, run,
          say, hosts: tuple = HOSTS, apps: tuple = APPS) -> list:
    lines = []
    jsonl = out.with_suffix(".jsonl")
    jsonl.write_text("")
    for index, (axis, size) in enumerate(sizes(base, hosts, apps)):
        say(f"sweep {axis}: {size.hosts} hosts x {size.apps} apps")
        for entry in run(size, workdir / f"size{index}", tools, env, parallel, 1, SHOWN):
            lines.append((axis, entry))
            with jsonl.open("a") as f:
                f.write(json.dumps({"sweep": axis, **entry}) + "\n")
    out.with_suffix(".md").write_text(table(lines, tools))
    plot(lines, tools, out)
    return lines


def redraw(jsonl: Path, out: Path, tools: list) -> None:
    """Table and plot again from a sweep's JSON lines (`python -m bench.sweep JSONL OUT`)."""
    lines = [(e.pop("sweep"), e) for e in map(json.loads, jsonl.read_text().splitlines())]
    out.with_suffix(".md").write_text(table(lines, tools))
    plot(lines, tools, out)


if __name__ == "__main__":
    import sys
    redraw(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:] or ["homefleet", "floor", "ansible"])
