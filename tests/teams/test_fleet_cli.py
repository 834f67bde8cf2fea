"""`python -m homefleet.fleet`: arguments, stack discovery and the preview file (pure; no Pulumi)."""

import pytest

from homefleet import fleet, fleet_run
from homefleet.fleet_run import Outcome


@pytest.fixture
def project(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: homefleet\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks").mkdir()
    for name in ("home", "office.example", "lab"):
        (tmp_path / "stacks" / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    (tmp_path / "stacks" / "compose").mkdir()
    return tmp_path


def test_all_means_every_stack_file(project):
    assert fleet_run.stack_names(project) == ["home", "lab", "office.example"]


@pytest.mark.parametrize("argv, message", [
    (["up"], "name the stacks, or give --all"),
    (["up", "home", "--all"], "name the stacks, or give --all"),
    (["up", "home", "--parallel", "0"], "--parallel must be 1 or more"),
    (["destroy", "home"], "invalid choice: 'destroy'"),
])
def test_bad_arguments_say_what_to_do(project, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        fleet.main([*argv, "--cwd", str(project)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_not_a_project_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        fleet.main(["up", "--all", "--cwd", str(tmp_path)])
    assert "has no Pulumi.yaml" in capsys.readouterr().err


def test_a_preview_without_json_still_gets_its_section():
    text = fleet.summary_markdown([
        Outcome("home", ok=True, preview={"steps": [], "changeSummary": {"same": 3}}),
        Outcome("lab", ok=False, error="no stack named 'lab' found"),
    ])
    assert text.startswith("### homefleet preview: stack `home`\n\nNo changes: the hosts already match the stack.\n")
    assert "### homefleet preview: stack `lab`\n\n**The preview printed no result**" in text
    assert "no stack named 'lab' found" in text
