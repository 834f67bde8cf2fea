"""`python -m bench` at its smallest (1 host x 1 app, no injected latency): the JSON lines
have their shape, homefleet's round-trip figures hold, and the Ansible playbook and the engine's
floor still run (so they cannot rot). ~50 s on 2 cores."""

import json
import subprocess
import sys

import pytest

from sim.engine import REPO

pytestmark = pytest.mark.engine

SCENARIOS = ["up", "noop", "refresh", "update", "destroy"]
FIGURES = {"wall_s", "cpu_s", "ssh_connections", "connections_per_host", "commands", "commands_per_ct",
           "commands_per_host", "by_kind", "peak_rss_mb", "processes"}


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--hosts", "1", "--apps", "1", "--latency-ms", "0", "--create-ms", "0",
         "--image-mb", "0", "--dir", str(workdir)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {entry["scenario"]: entry for entry in map(json.loads, proc.stdout.splitlines())}


def test_one_line_per_scenario_with_both_tools_and_their_ratios(lines):
    assert list(lines) == SCENARIOS
    for entry in lines.values():
        assert entry["hosts"] == 1 and entry["apps_per_host"] == 1 and entry["cts"] == 1
        for tool in ("homefleet", "baseline", "ansible"):
            assert FIGURES <= set(entry[tool])
            assert entry[tool]["wall_s"] > 0
        for tool in ("homefleet", "baseline", "floor"):
            assert entry[tool]["peak_rss_mb"] > 0
        for key in ("ratio", "ratio_ansible"):
            assert set(entry[key]) == {"wall_s", "cpu_s", "ssh_connections", "commands", "peak_rss_mb"}
        assert entry["floor"]["resources"] == 2, "one template and one CT, as homefleet declares"
        assert entry["overhead"] == {
            k: round(entry["homefleet"][k] - entry["floor"][k], 2) for k in ("wall_s", "cpu_s")}


def test_a_no_change_up_sends_nothing(lines):
    noop = lines["noop"]["homefleet"]
    assert noop["commands"] == 0 and noop["ssh_connections"] == 0
    assert lines["noop"]["baseline"]["commands"] > 0, "the baseline reads everything every run"


def test_one_connection_per_host_and_one_command_per_new_ct(lines):
    up = lines["up"]["homefleet"]
    assert up["connections_per_host"] == 1
    assert up["by_kind"]["ct_create"] == 1, "create, env, start and read back in one exec"
    assert up["by_kind"]["health_check"] == 1, "the health gate waits on the host: one exec per started CT"
    baseline = lines["up"]["baseline"]
    assert baseline["ssh_connections"] == baseline["commands"], "the baseline connects once per command"


def test_a_refresh_reads_every_ct_of_a_host_in_one_command(lines):
    refresh = lines["refresh"]["homefleet"]
    assert refresh["by_kind"].get("host_read") == 1 and "ct_read" not in refresh["by_kind"]
    # The bench app publishes no port: its health is "running", known from the host read. (An
    # app with a check costs one more exec per running CT: the host read cannot know its check.)
    assert refresh["by_kind"] == {"host_read": 1, "template_read": 1}, "a template: archive and registry in one exec"
    assert refresh["connections_per_host"] == 1


def test_the_ansible_playbook_converges_and_is_idempotent(lines):
    """One master connection per host (ControlPersist); the no-change run changes nothing;
    the update changes one thing; destroy leaves nothing (the bench checks the hosts)."""
    assert lines["up"]["ansible"]["connections_per_host"] == 1
    assert lines["up"]["ansible"]["changed"] > 0
    assert lines["noop"]["ansible"]["changed"] == 0
    assert lines["update"]["ansible"]["changed"] == 1
    assert lines["up"]["ansible"]["by_kind"] == {"ansible_module": lines["up"]["ansible"]["commands"]}
