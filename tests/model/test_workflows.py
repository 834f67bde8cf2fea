"""The PR workflow refreshes where drift matters (issue 19.5): the preview shows drift, the
merge's `up` applies it (a plain `pulumi up` compares with the state and would not)."""

from pathlib import Path

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "preview.yml"


def _steps(job: str) -> list:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"]


def test_the_preview_refreshes_with_the_stacks_current_host_addresses():
    runs = [step.get("run", "") for step in _steps("preview")]
    preview = next(line for text in runs for line in text.splitlines() if "pulumi preview" in line)
    assert "--refresh" in preview and "--run-program" in preview
    action = next(step for step in _steps("preview") if step.get("with", {}).get("command") == "preview")
    assert action["with"]["refresh"] is True


def test_the_merge_up_applies_drift():
    up = next(step for step in _steps("up") if step.get("with", {}).get("command") == "up")
    assert up["with"]["refresh"] is True


def test_the_docs_say_that_up_needs_refresh_to_apply_drift():
    docs = Path(__file__).resolve().parents[2] / "docs"
    for name in ("proxmox.md", "troubleshooting.md", "pull-requests.md"):
        assert "pulumi up --refresh" in (docs / name).read_text(), name
