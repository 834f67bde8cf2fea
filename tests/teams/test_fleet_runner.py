"""`python -m homefleet.fleet` over four stacks on simulated hosts (state in PostgreSQL), one failing:
up (concurrent, plain progress lines, final table, exit 1), preview (one Markdown file for all
stacks, the PR workflow's summary), refresh of named stacks."""

import re
import subprocess

import pytest
import yaml

from homefleet.preview_summary import summarize
from sim.engine import LocalProject

from ..engine.helpers import ct_list
from .conftest import hosts_config

pytestmark = pytest.mark.engine

GOOD = {"alpha": "pve1", "beta": "pve2", "gamma": "pve1"}


def fleet_cli(project, *args):
    proc = subprocess.run([str(project.workdir / ".venv" / "bin" / "python"), "-m", "homefleet.fleet", *args],
                          cwd=project.workdir, env={**project.env, "CI": "true"}, capture_output=True,
                          text=True, timeout=900)
    return proc


def row(out: str, stack: str) -> list:
    """The table row of `stack`: [stack, result, changes, duration]."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.startswith(stack + " ")]
    assert len(rows) == 1, out
    return rows[0]


def write_stack(project, stack: str, hosts: dict, host: str, image: str, memory: int = 64) -> None:
    apps = {f"{stack}-web": {"host": host, "image": image, "memory": memory}}
    project.stack_file(stack).write_text(yaml.safe_dump({"config": {"homefleet:hosts": hosts, "homefleet:apps": apps}}))


@pytest.fixture(scope="module")
def four_stacks(tmp_path_factory, fleet, pg):
    """Stack files only: the runner creates the stacks (Automation API create_or_select_stack),
    with the state of all four in one PostgreSQL database, as a team would have it."""
    project = LocalProject.create(tmp_path_factory.mktemp("fleetcli"))
    project.env.update({"PULUMI_BACKEND_URL": pg.url(password=False), "PGPASSWORD": pg.password})
    for stack, host in GOOD.items():
        write_stack(project, stack, hosts_config(fleet), host, "docker.io/library/nginx:1.27")
    write_stack(project, "broken", hosts_config(fleet), "pve2", "docker.io/library/nosuchimage:9.9")
    return project


def test_up_all_in_parallel_reports_each_stack_and_fails_for_one(fleet, pg, four_stacks):
    run = fleet_cli(four_stacks, "up", "--all", "--parallel", "4")
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    for stack in GOOD:
        assert f"[{stack}] create ProxmoxCT {stack}-web\n" in out, out
        assert row(out, stack)[:3] == [stack, "ok", "3"], out   # stack, template, CT
    assert row(out, "broken")[1] == "failed"
    assert re.search(r"^broken: .*nosuchimage", out, re.M), out
    assert "3 of 4 stacks succeeded, 1 failed" in out
    keys = {row[0] for row in pg.sql("SELECT key FROM pulumi_state")}
    assert {f"pulumi/.pulumi/stacks/homefleet/{s}.json" for s in GOOD} <= keys, keys
    assert not (four_stacks.backend / ".pulumi").exists(), "no state in a local folder"
    names = {r["name"] for host in fleet.hosts for r in ct_list(host)}
    assert {f"{s}-web" for s in GOOD} <= names and "broken-web" not in names


def test_preview_writes_the_pr_summary_of_every_stack_into_one_file(fleet, four_stacks, tmp_path):
    write_stack(four_stacks, "alpha", hosts_config(fleet), "pve1", "docker.io/library/nginx:1.27", memory=128)
    summary = tmp_path / "preview.md"
    run = fleet_cli(four_stacks, "preview", "--all", "--parallel", "4", "--summary", str(summary))
    text = summary.read_text()
    order = re.findall(r"^### homefleet preview: stack `(\w+)`", text, re.M)
    assert order == ["alpha", "beta", "broken", "gamma"], text
    sections = dict(zip(order, ["### " + part.strip() + "\n" for part in re.split(r"^### ", text, flags=re.M)[1:]]))
    # alpha: exactly what the pull-request workflow posts (.github/workflows/preview.yml)
    workflow = four_stacks.pulumi("preview", "--json", "--refresh", "--show-sames", stack="alpha", check=True)
    assert sections["alpha"] == summarize(workflow.json(), "alpha"), text
    assert "**pve1**\n- **alpha-web** — **update**: memory: 64 -> 128 MiB" in sections["alpha"]
    assert row(run.stdout, "alpha")[1:3] == ["ok", "1"], run.stdout
    for stack in ("beta", "gamma"):
        assert "No changes: the hosts already match the stack." in sections[stack], text
        assert row(run.stdout, stack)[1] == "no changes"
    assert "No changes" not in sections["broken"], text
    assert run.returncode == (1 if row(run.stdout, "broken")[1] == "failed" else 0), run.stdout


def test_refresh_named_stacks(four_stacks):
    run = fleet_cli(four_stacks, "refresh", "alpha", "beta", "--parallel", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    assert [row(run.stdout, s)[1] for s in ("alpha", "beta")] == ["no changes", "no changes"]
    assert "gamma" not in run.stdout
