"""Run one Pulumi operation over many stacks at once with Pulumi's Automation API.

`run_stacks("up", ["home", "office"], work_dir, parallel=4, progress=...)` runs each stack's
`up` (or `preview`, `refresh`) through `pulumi.automation`, at most `parallel` at a time, and
returns one `Outcome` per stack in the order asked. The backend, the secrets passphrase and the
Pulumi CLI come from the environment, as for `pulumi` itself (docs/teams.md). Engine events go
to `progress(stack, Event)`; nothing here prints.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import yaml
from pulumi import automation as auto

OPERATIONS = ("up", "preview", "refresh")
NOT_CHANGES = {"same", "read", "refresh"}


@dataclass(frozen=True)
class Event:
    """What a progress display needs from an engine event."""
    kind: str                 # "start" | "step" | "done" | "failed" | "error" | "finish"
    text: str = ""


@dataclass
class Outcome:
    stack: str
    ok: bool = False
    changes: int = 0
    duration: float = 0.0
    error: str = ""
    preview: Optional[dict] = None     # `pulumi preview --json` output, for preview
    counts: dict = field(default_factory=dict)

    @property
    def result(self) -> str:
        if not self.ok:
            return "failed"
        return "no changes" if self.changes == 0 else "ok"


def stack_names(work_dir: Path) -> list:
    """Every stack with a file `<stackConfigDir>/Pulumi.<stack>.yaml` (as tools/changed_stacks.py --all)."""
    project = yaml.safe_load((work_dir / "Pulumi.yaml").read_text()) or {}
    config_dir = work_dir / (project.get("stackConfigDir") or ".")
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in config_dir.glob("Pulumi.*.yaml"))


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _kind(type_token: str) -> str:
    return type_token.rsplit(":", 1)[-1]


def _step(meta) -> Optional[str]:
    op = str(getattr(meta.op, "value", meta.op))
    if op in NOT_CHANGES or meta.type == "pulumi:pulumi:Stack" or meta.type.startswith("pulumi:providers:"):
        return None
    return f"{op} {_kind(meta.type)} {_name(meta.urn)}"


def translate(event: auto.EngineEvent) -> Optional[Event]:
    """An engine event -> a progress Event (None for the ones a person need not see)."""
    if event.resource_pre_event:
        step = _step(event.resource_pre_event.metadata)
        return Event("step", step) if step else None
    if event.res_outputs_event:
        step = _step(event.res_outputs_event.metadata)
        return Event("done", f"{step} done") if step else None
    if event.res_op_failed_event:
        return Event("failed", f"{_step(event.res_op_failed_event.metadata) or 'step'} FAILED")
    if event.diagnostic_event and event.diagnostic_event.severity == "error":
        # One line: homefleet's errors put the file, key and fix on the lines after a heading.
        return Event("error", " ".join(event.diagnostic_event.message.split())[:300])
    return None


class _Cli(auto.PulumiCommand):
    """The `pulumi` on PATH, with `--show-sames` added to `preview --json` as the pull-request
    workflow runs it: the summary names a recreated CT's images from the unchanged templates.
    The Automation API has no option for it."""

    def run(self, args, cwd, additional_env, on_output=None, on_error=None):
        if args[:1] == ["preview"] and "--json" in args:
            args = [*args, "--show-sames"]
        return super().run(args, cwd, additional_env, on_output, on_error)


def _changes(counts: dict) -> int:
    return sum(n for op, n in counts.items() if str(getattr(op, "value", op)) not in NOT_CHANGES)


def _error_line(exc: Exception, errors: list) -> str:
    if errors:  # the first is the cause; Pulumi's closing "update failed" comes last
        return errors[0]
    lines = [line.strip() for line in str(exc).splitlines() if line.strip().startswith("error:")]
    return (lines[-1] if lines else str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__)[:200]


def run_stack(operation: str, stack_name: str, work_dir: Path,
              progress: Callable[[str, Event], None] = lambda s, e: None,
              cli: Optional[auto.PulumiCommand] = None) -> Outcome:
    outcome = Outcome(stack_name)
    errors: list = []
    stdout: list = []

    def on_event(event: auto.EngineEvent) -> None:
        translated = translate(event)
        if translated:
            if translated.kind == "error":
                errors.append(translated.text)
            progress(stack_name, translated)

    started = time.monotonic()
    progress(stack_name, Event("start", operation))
    try:
        opts = auto.LocalWorkspaceOptions(work_dir=str(work_dir), pulumi_command=cli or _Cli())
        if operation == "refresh":
            stack = auto.select_stack(stack_name, work_dir=str(work_dir), opts=opts)
        else:
            stack = auto.create_or_select_stack(stack_name, work_dir=str(work_dir), opts=opts)
        if operation == "up":
            result = stack.up(on_event=on_event, color="never", suppress_progress=True)
            counts = result.summary.resource_changes or {}
        elif operation == "refresh":
            result = stack.refresh(on_event=on_event, color="never", suppress_progress=True)
            counts = result.summary.resource_changes or {}
        else:
            # The same preview the pull-request workflow runs (.github/workflows/preview.yml).
            result = stack.preview(on_event=on_event, on_output=stdout.append, color="never", json=True,
                                   refresh=True, diff=False)
            counts = result.change_summary or {}
            outcome.preview = json.loads(result.stdout)
        outcome.counts = {str(getattr(k, "value", k)): v for k, v in counts.items()}
        outcome.changes = _changes(counts)
        outcome.ok = True
    except Exception as exc:  # a failed stack is a row in the table, never the end of the others
        outcome.error = _error_line(exc, errors)
        if operation == "preview":
            try:
                outcome.preview = json.loads("\n".join(stdout))
            except ValueError:
                outcome.preview = None
    outcome.duration = time.monotonic() - started
    progress(stack_name, Event("finish", outcome.result))
    return outcome


def run_stacks(operation: str, stacks: list, work_dir: Path, parallel: int = 1,
               progress: Callable[[str, Event], None] = lambda s, e: None) -> list:
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}, not {operation!r}")
    cli = _Cli()  # checks the CLI's version once
    if parallel > 1 and len(stacks) > 1:
        # Open the backend once before the stacks run side by side: the DIY PostgreSQL backend
        # creates its table on first use, and parallel first uses race on it (seen as
        # `failed to create table pulumi_state: pq: duplicate key ...` on a fresh database).
        # `whoami` opens it and reads nothing: `stack ls --json` hangs on that backend once it
        # holds four stacks (pulumi v3.192.0; seen in tests/teams/test_fleet_runner.py).
        auto.LocalWorkspace(work_dir=str(work_dir), pulumi_command=cli).who_am_i()
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="stack") as pool:
        futures = [pool.submit(run_stack, operation, name, work_dir, progress, cli) for name in stacks]
        return [f.result() for f in futures]
