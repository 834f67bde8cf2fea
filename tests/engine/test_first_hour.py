"""Issue 19, done-when: docs/getting-started.md walked as a new user would, against a simulated host.

Every fenced `sh` block of the guide runs as written, in order, in one shell session per block,
with only the values a user would type in substituted: the clone source (this checkout), the
host's address (the simulated host's loopback port) and `$EDITOR` (a script that fills in the
simulated host's address, port, pinned key and key file, as the user pastes them). If the guide
changes a command, this test runs the new command; if a command stops working, this test fails.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sim.engine import REPO, offline_env
from sim.testing import running_fleet

from .helpers import ct_list

pytestmark = pytest.mark.engine
GUIDE = REPO / "docs" / "getting-started.md"
EDITOR = '''#!{python}
import sys, yaml
host = {host}
path = sys.argv[1]
data = yaml.safe_load(open(path))
data["config"]["homefleet:hosts"]["pve1"].update(host)
open(path, "w").write(yaml.safe_dump(data, sort_keys=False))
'''


def sh_blocks(text: str) -> list:
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("first-hour"), hosts=1) as fleet:
        yield fleet, json.loads(fleet.hosts_json.read_text())["hosts"][0]


def test_the_guide_has_the_blocks_this_test_walks():
    blocks = sh_blocks(GUIDE.read_text())
    assert len(blocks) >= 3
    assert "git clone" in blocks[0] and "pulumi up -s pve1" in blocks[1]


def test_getting_started_runs_as_written(host, tmp_path):
    fleet, sim = host
    substitutions = {
        "<your copy of homefleet>": f"{REPO} homefleet && ln -s {REPO}/.venv homefleet/.venv"
                                    f" && ln -s {REPO}/.tools homefleet/.tools",
        "192.168.1.42": f"-p {sim['port']} {sim['address']}",
    }
    editor = tmp_path / "editor"
    editor.write_text(EDITOR.format(python=sys.executable, host=repr({
        "address": sim["address"], "port": sim["port"], "hostKey": sim["host_key"], "keyFile": sim["client_key"]})))
    editor.chmod(0o755)
    env = offline_env(tmp_path / "state", {"EDITOR": str(editor)})
    (tmp_path / "state").mkdir()
    cwd, outputs = tmp_path, []
    stdin = {3: "s3cret-admin-token\n"}
    for number, block in enumerate(sh_blocks(GUIDE.read_text()), 1):
        script = block
        for text, value in substitutions.items():
            script = script.replace(text, value)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script + "\npwd >&2"], cwd=cwd, env=env,
                              input=stdin.get(number, ""), capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"block {number} of {GUIDE.name} failed:\n{script}\n{done.stdout}\n{done.stderr}"
        cwd = Path(done.stderr.strip().splitlines()[-1])  # `cd homefleet` carries over to the next block
        outputs.append(done.stdout)

    assert sim["host_key"].split()[1] in outputs[1]  # ssh-keyscan printed the key the user pastes
    assert "jellyfin" in outputs[1] and "202" in outputs[1]  # pulumi stack output
    assert 202 in {row["vmid"] for row in ct_list(fleet["pve1"])}
    check = subprocess.run(["pulumi", "preview", "-s", "pve1", "--non-interactive"], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=900)
    assert check.returncode == 0, check.stdout + check.stderr  # the secrets block's config is accepted
    config = yaml.safe_load((cwd / "stacks" / "Pulumi.pve1.yaml").read_text())["config"]
    assert set(config["homefleet:registries"]) == {"ghcr.io"}
    subprocess.run(["pulumi", "destroy", "--yes", "-s", "pve1", "--non-interactive"], cwd=cwd, env=env,
                   capture_output=True, text=True, timeout=900)
