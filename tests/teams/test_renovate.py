"""renovate.json, proven with the real Renovate (tools/renovate/, pinned) in an offline
extract-only run (`--platform=local --dry-run=extract`) inside a network namespace with no
network at all: every image reference of the catalog (packages/*.yml and their compose files)
and of the stacks (stacks/Pulumi.*.yaml, stacks/compose/) is found with datasource `docker`,
its package name, tag and digest — and nothing else is. The expected list is read from the
files with a YAML parser, so a new package file whose image Renovate misses fails this test.
Extra files in the copy exercise the spellings the files may use: quoted, with a digest,
a registry with a port, a trailing comment. A lookup run against a local registry shows the
updates Renovate would open pull requests for: a new tag, and a moved digest.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sim import images, procs, registry
from sim.engine import REPO

DIGEST = "sha256:" + "ab" * 32
EXTRA_PACKAGE = f"""name: zz-newapp
description: a package added after renovate.json was written
category: tools
image: "ghcr.io/example/newapp:1.2.3@{DIGEST}"
ports:
  - {{port: 8080, scheme: http}}
"""
EXTRA_STACK = """config:
  homefleet:apps:
    backup:
      host: pve1
      image: 'registry.lan:5000/tools/backup:2.0'   # a private registry
    mirror:
      image: docker.io/library/alpine:3.20@""" + DIGEST + """
      host: pve1
"""


def split_ref(ref: str) -> tuple:
    """`name[:tag][@digest]` -> (name, tag, digest); a registry port is not a tag."""
    name, _, digest = ref.partition("@")
    slash = name.rfind("/")
    tag = ""
    if ":" in name[slash + 1:]:
        name, tag = name.rsplit(":", 1)
    return name, tag or None, digest or None


def expected_refs(root: Path) -> set:
    """(file, name, tag, digest) of every image reference, read with a YAML parser."""
    refs = set()

    def add(path: Path, ref):
        if isinstance(ref, str):
            refs.add((path.relative_to(root).as_posix(), *split_ref(ref)))

    for path in sorted(root.glob("packages/*.yml")):
        add(path, (yaml.safe_load(path.read_text()) or {}).get("image"))
    for path in sorted(root.glob("stacks/Pulumi.*.yaml")):
        apps = ((yaml.safe_load(path.read_text()) or {}).get("config") or {}).get("homefleet:apps") or {}
        for app in apps.values():
            add(path, (app or {}).get("image"))
    for path in sorted([*root.glob("packages/compose/*.yml"), *root.glob("stacks/compose/*.yml")]):
        for service in ((yaml.safe_load(path.read_text()) or {}).get("services") or {}).values():
            add(path, (service or {}).get("image"))
    return refs


def renovate_run(workdir: Path, dry_run: str = "extract", isolate: bool = True) -> tuple:
    """Run Renovate over `workdir` (`--dry-run=extract`: without any network); (report, log lines)."""
    renovate = subprocess.run([str(REPO / "tools" / "renovate.sh")], check=True, capture_output=True,
                              text=True).stdout.strip()
    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    subprocess.run(["git", "add", "-A"], cwd=workdir, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "snapshot"],
                   cwd=workdir, check=True)
    home = workdir.parent / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LOG_FORMAT": "json", "LOG_LEVEL": "debug",
           "RENOVATE_BASE_DIR": str(home / "renovate")}
    report = workdir.parent / "report.json"
    argv = [renovate, "--platform=local", f"--dry-run={dry_run}", "--report-type=file", f"--report-path={report}"]
    # No network at all, not even loopback: Renovate cannot reach a registry even if it tried.
    proc = subprocess.run(["unshare", "--net", *argv] if isolate else argv, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600)
    log = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(report.read_text()), log


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("renovate") / "repo"
    root.mkdir()
    for name in ("packages", "stacks"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy2(REPO / "renovate.json", root / "renovate.json")
    (root / "packages" / "zz-newapp.yml").write_text(EXTRA_PACKAGE)
    (root / "stacks" / "Pulumi.extra.yaml").write_text(EXTRA_STACK)
    report, log = renovate_run(root)
    return root, report["repositories"]["local"], log


def test_every_image_reference_is_found_with_datasource_name_tag_and_digest(extracted):
    root, report, _ = extracted
    found = set()
    for manager, files in report["packageFiles"].items():
        for package_file in files:
            for dep in package_file["deps"]:
                assert dep.get("datasource") == "docker" and not dep.get("skipReason"), (package_file["packageFile"], dep)
                assert dep.get("packageName") == dep["depName"], dep
                found.add((package_file["packageFile"], dep["packageName"], dep.get("currentValue"),
                           dep.get("currentDigest")))
    expected = expected_refs(root)
    assert len(expected) > 40
    assert ("packages/zz-newapp.yml", "ghcr.io/example/newapp", "1.2.3", DIGEST) in expected
    assert ("stacks/Pulumi.extra.yaml", "registry.lan:5000/tools/backup", "2.0", None) in expected
    assert ("stacks/Pulumi.pve1.example.yaml", "docker.io/traefik/whoami", "v1.10.3", None) in expected
    assert found - expected == set(), "Renovate found references that are not images, or misread them"
    assert expected - found == set(), "image references Renovate does not see: renovate.json misses them"


def test_the_run_made_no_request(extracted):
    _, _, log = extracted
    stats = [entry for entry in log if entry.get("msg") == "HTTP statistics"]
    assert stats and all(entry.get("requests") == 0 for entry in stats), stats
    assert not [entry for entry in log if entry.get("level", 0) >= 50], "no fatal errors"


def test_lookup_against_a_registry_proposes_the_new_tag_and_the_moved_digest(tmp_path):
    """The other half, with a real registry (Debian's docker-registry on loopback, standing in
    for Docker Hub through a packageRule as a pull-through mirror would): a newer tag is proposed
    for a tag-only reference, a moved digest for a digest-pinned one, and no digest is added."""
    sim_dir = tmp_path / "sim"
    sim_dir.mkdir()
    server = registry.start(sim_dir)
    try:
        for ref in ("docker.io/library/nginx:1.27", "docker.io/library/nginx:1.28", "docker.io/library/nginx:1.28.0"):
            registry.push_spec(images.generic_spec(ref), server.address, cache=False)
        old = registry.push_spec(images.generic_spec("docker.io/library/alpine:3.20"), server.address, cache=False)
        new = registry.push_spec(images.generic_spec("docker.io/library/alpine:3.20").with_overrides(revision="2"),
                                 server.address, cache=False)
        assert old != new
        root = tmp_path / "repo"
        (root / "packages").mkdir(parents=True)
        (root / "stacks").mkdir()
        (root / "packages" / "web.yml").write_text("name: web\nimage: docker.io/library/nginx:1.27\n")
        (root / "stacks" / "Pulumi.site.yaml").write_text(
            f"config:\n  homefleet:apps:\n    tool:\n      image: docker.io/library/alpine:3.20@{old}\n")
        config = json.loads((REPO / "renovate.json").read_text())
        config["packageRules"] = [*config.get("packageRules", []), {
            "matchDatasources": ["docker"], "registryUrls": [f"http://{server.address}"],
            "overridePackageName": f"{server.address}/{{{{{{packageName}}}}}}"}]
        (root / "renovate.json").write_text(json.dumps(config))
        report, log = renovate_run(root, dry_run="lookup", isolate=False)
    finally:
        procs.stop([server.pid])
    deps = {dep["depName"]: dep for files in report["repositories"]["local"]["packageFiles"].values()
            for package_file in files for dep in package_file["deps"]}
    nginx, alpine = deps["docker.io/library/nginx"], deps["docker.io/library/alpine"]
    assert [(u["updateType"], u["newValue"]) for u in nginx["updates"]] == [("minor", "1.28")], nginx
    assert not any(u.get("newDigest") for u in nginx["updates"]), "no digest where the file pins none"
    assert [(u["updateType"], u["newDigest"]) for u in alpine["updates"]] == [("digest", new)], alpine
    hosts = {host for entry in log if entry.get("msg") == "HTTP statistics" for host in entry.get("hosts", {})}
    assert hosts == {"127.0.0.1"}, f"Renovate asked {hosts}"  # only the local registry
