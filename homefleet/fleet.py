"""Apply, preview or refresh many stacks from one command.

    python -m homefleet.fleet up --all --parallel 4
    python -m homefleet.fleet preview home office --summary preview.md
    python -m homefleet.fleet refresh home

Runs the stacks through Pulumi's Automation API (homefleet/fleet_run.py), at most `--parallel`
at a time, with live progress per stack (homefleet/fleet_progress.py), then a table
(homefleet/fleet_table.py): stack,
result, changes, duration. Exits 1 if any stack failed. `preview` also writes the Markdown
summary the pull-request workflow posts (homefleet/preview_summary.py), every stack in one file.
Backend and secrets come from the environment as for `pulumi` (PULUMI_BACKEND_URL,
PULUMI_CONFIG_PASSPHRASE; docs/teams.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from . import fleet_run
from .fleet_progress import Progress
from .fleet_table import table
from .preview_summary import summarize

NO_RESULT = "**The preview printed no result**; see the log of `python -m homefleet.fleet preview`."


def summary_markdown(outcomes: list) -> str:
    parts = []
    for outcome in outcomes:
        if outcome.preview is not None:
            parts.append(summarize(outcome.preview, outcome.stack))
        else:
            parts.append(f"### homefleet preview: stack `{outcome.stack}`\n\n{NO_RESULT}\n"
                         + (f"\n```\n{outcome.error}\n```\n" if outcome.error else ""))
    return "\n".join(parts)


def parse_args(argv: Optional[list]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m homefleet.fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("operation", choices=fleet_run.OPERATIONS)
    parser.add_argument("stacks", nargs="*", metavar="STACK")
    parser.add_argument("--all", action="store_true", help="every stack with a stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--parallel", "-p", type=int, default=1, metavar="N", help="stacks at once (default 1)")
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="the project folder (with Pulumi.yaml)")
    parser.add_argument("--summary", type=Path, default=Path("fleet-preview.md"),
                        help="preview only: where to write the Markdown summary (default fleet-preview.md)")
    parser.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    args = parser.parse_args(argv)
    if args.all == bool(args.stacks):
        parser.error("name the stacks, or give --all (not both)")
    if args.parallel < 1:
        parser.error("--parallel must be 1 or more")
    if not (args.cwd / "Pulumi.yaml").is_file():
        parser.error(f"{args.cwd} has no Pulumi.yaml; run from the project folder or give --cwd")
    return args


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    work_dir = args.cwd.resolve()
    stacks = fleet_run.stack_names(work_dir) if args.all else list(dict.fromkeys(args.stacks))
    if not stacks:
        print(f"no stacks: {work_dir} has no stack files", file=sys.stderr)
        return 2
    progress = Progress(sys.stdout, stacks, live=False if args.plain else None)
    try:
        outcomes = fleet_run.run_stacks(args.operation, stacks, work_dir, args.parallel, progress)
    finally:
        progress.close()
    print()
    print(table(outcomes), end="")
    if args.operation == "preview":
        args.summary.write_text(summary_markdown(outcomes), encoding="utf-8")
        print(f"summary: {args.summary}")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
