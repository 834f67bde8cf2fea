"""tools/changed_stacks.py: which stacks a pull request touches."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import yaml

TOOL = Path(__file__).resolve().parents[2] / "tools" / "changed_stacks.py"
_spec = importlib.util.spec_from_file_location("changed_stacks", TOOL)
changed_stacks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(changed_stacks)

STACKS = {
    "pve1": {"config": {"homefleet:apps": {"jf": {"package": "jellyfin", "host": "pve1"},
                                           "web": {"image": "nginx:1.27", "host": "pve1"}}}},
    "nas": {"config": {"homefleet:apps": {"photos": {"package": "immich", "host": "nas1"},
                                          "shop": {"compose": "compose/./shop.yml", "host": "nas1"}}}},
    "empty": {"config": {}},
}
PACKAGES = changed_stacks.package_files({"jellyfin": {"name": "jellyfin", "image": "x"},
                                         "immich": {"name": "immich", "compose": "compose/immich.yml"}})


def picked(*paths):
    return {name: reasons for name, reasons in changed_stacks.affected(list(paths), STACKS, PACKAGES).items()}


def test_a_stack_file_touches_only_that_stack():
    assert picked("stacks/Pulumi.pve1.yaml") == {"pve1": ["its stack file changed"]}


def test_a_package_or_its_compose_file_touches_the_stacks_that_use_it():
    assert picked("packages/jellyfin.yml") == {"pve1": ["package jellyfin changed (packages/jellyfin.yml)"]}
    assert picked("packages/compose/immich.yml") == {"nas": ["package immich changed (packages/compose/immich.yml)"]}
    assert picked("packages/plex.yml", "packages/compose/paperless-ngx.yml", "docs/x.md", "tests/a.py") == {}


def test_an_app_compose_file_touches_its_stack():
    assert picked("compose/shop.yml") == {"nas": ["compose file compose/shop.yml changed"]}


def test_program_code_touches_every_stack():
    got = picked("providers/proxmox_ct.py")
    assert sorted(got) == ["empty", "nas", "pve1"]
    assert got["empty"] == ["the program changed (providers/proxmox_ct.py)"]


def test_the_command_line_against_a_real_git_history(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    (tmp_path / "stacks").mkdir()
    (tmp_path / "packages").mkdir()
    for name, config in STACKS.items():
        (tmp_path / "stacks" / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "packages" / "jellyfin.yml").write_text("name: jellyfin\nimage: a:1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "base")
    (tmp_path / "packages" / "jellyfin.yml").write_text("name: jellyfin\nimage: a:2\n")
    git("commit", "-q", "-am", "bump")

    def run(*args):
        return subprocess.run([sys.executable, str(TOOL), *args, "--repo", str(tmp_path)],
                              capture_output=True, text=True, timeout=60)

    out = run("HEAD~1", "HEAD")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["pve1"]
    assert "pve1: package jellyfin changed (packages/jellyfin.yml)" in out.stderr
    assert json.loads(run("0" * 40, "HEAD").stdout) == ["empty", "nas", "pve1"]
    bad = run("no-such-commit", "HEAD")
    assert bad.returncode != 0 and "git diff --name-only" in bad.stderr
    assert run().returncode == 2


def test_example_stacks_are_never_selected(tmp_path):
    """stacks/Pulumi.fleet.example.yaml is a file to copy from: previewing it fails (no such stack)."""
    stacks = dict(STACKS, **{"fleet.example": {"config": {}}, "pve1.example": {"config": {}}})
    got = changed_stacks.affected(["providers/proxmox_ct.py", "stacks/Pulumi.fleet.example.yaml"], stacks, PACKAGES)
    assert sorted(got) == ["empty", "nas", "pve1"]
    assert changed_stacks.stack_of("stacks/Pulumi.pve1.example.yaml") is None
    assert changed_stacks.stack_of("stacks/Pulumi.pve1.yaml") == "pve1"
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(TOOL), "--all", "--repo", str(repo)], capture_output=True, text=True,
                         timeout=60)
    listed = json.loads(out.stdout)
    assert "demo" in listed and not [s for s in listed if s.endswith(".example")]
