#!/usr/bin/env python3
"""Which stacks a change touches, for CI: `python3 tools/changed_stacks.py BASE [HEAD]`.

Prints a JSON list of stack names (for a GitHub Actions matrix); why each one was picked
goes to stderr. A stack is touched when, between BASE and HEAD (default: the work tree):

- its file `stacks/Pulumi.<stack>.yaml` changed (a deleted stack file is not listed:
  there is nothing left to preview; destroy it by hand);
- a catalog package one of its apps uses changed (`packages/<name>.yml`), or the compose
  file of that package (`packages/compose/...`);
- a compose file one of its apps names directly (`compose: x.yml`, relative to the repo);
- the program itself changed (`__main__.py`, `Pulumi.yaml`, `requirements.txt`,
  `homefleet/`, `providers/`): then every stack, since any of them may plan differently.

`--all` lists every stack. Example stacks (`stacks/Pulumi.<name>.example.yaml`, files to copy
from, never deployed) are never listed. Needs git and PyYAML; reads YAML only, validates nothing.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import subprocess
import sys
from pathlib import Path

import yaml

PROGRAM_FILES = ("__main__.py", "Pulumi.yaml", "requirements.txt")
PROGRAM_DIRS = ("homefleet/", "providers/")
STACK_PREFIX, STACK_SUFFIX = "stacks/Pulumi.", ".yaml"
EXAMPLE_SUFFIX = ".example"  # stacks/Pulumi.fleet.example.yaml: a file to copy from, not a stack


def stack_of(path: str):
    """The stack a repo-relative path is the file of; None for other files and for examples."""
    if path.startswith(STACK_PREFIX) and path.endswith(STACK_SUFFIX) and "/" not in path[len("stacks/"):]:
        name = path[len(STACK_PREFIX):-len(STACK_SUFFIX)]
        return name if name and not name.endswith(EXAMPLE_SUFFIX) else None
    return None


def stack_uses(config: dict) -> tuple:
    """(package names, repo-relative compose files) the stack's apps name."""
    apps = ((config or {}).get("config") or {}).get("homefleet:apps") or {}
    packages, compose = set(), set()
    for app in apps.values() if isinstance(apps, dict) else []:
        if not isinstance(app, dict):
            continue
        if isinstance(app.get("package"), str):
            packages.add(app["package"])
        if isinstance(app.get("compose"), str):
            compose.add(posixpath.normpath(app["compose"]))
    return packages, compose


def package_files(packages: dict) -> dict:
    """{package name: {repo-relative files}} from {file stem: parsed package YAML}."""
    files = {}
    for stem, spec in packages.items():
        name = spec.get("name", stem) if isinstance(spec, dict) else stem
        owned = {f"packages/{stem}.yml"}
        if isinstance(spec, dict) and isinstance(spec.get("compose"), str):
            owned.add(posixpath.normpath(posixpath.join("packages", spec["compose"])))
        files.setdefault(name, set()).update(owned)
    return files


def affected(changed: list, stacks: dict, packages: dict) -> dict:
    """{stack: [reasons]} for the changed repo-relative paths; `stacks` maps a name to its
    parsed file, `packages` a package name to the files it is made of (package_files)."""
    changed = [posixpath.normpath(p) for p in changed]
    program = [p for p in changed if p in PROGRAM_FILES or p.startswith(PROGRAM_DIRS)]
    picked: dict = {}
    for name, config in sorted(stacks.items()):
        if name.endswith(EXAMPLE_SUFFIX):
            continue
        reasons = []
        if STACK_PREFIX + name + STACK_SUFFIX in changed:
            reasons.append("its stack file changed")
        uses_packages, uses_compose = stack_uses(config)
        for package in sorted(uses_packages):
            hit = sorted(set(changed) & packages.get(package, set()))
            if hit:
                reasons.append(f"package {package} changed ({', '.join(hit)})")
        for compose in sorted(uses_compose & set(changed)):
            reasons.append(f"compose file {compose} changed")
        if program:
            reasons.append(f"the program changed ({', '.join(program[:3])}{', ...' if len(program) > 3 else ''})")
        if reasons:
            picked[name] = reasons
    return picked


def git_changed(base: str, head, cwd: Path) -> list:
    """Paths changed since the merge base of BASE and HEAD (or the work tree)."""
    argv = ["git", "diff", "--name-only", "--no-renames", f"{base}...{head}" if head else base]
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"changed_stacks: {' '.join(argv)} failed: {result.stderr.strip()}")
    return [line for line in result.stdout.splitlines() if line]


def read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        print(f"changed_stacks: {path} is not valid YAML ({exc}); treating it as empty", file=sys.stderr)
        return {}


def load_repo(repo: Path) -> tuple:
    stacks = {stack_of(f"stacks/{p.name}"): read_yaml(p) for p in sorted((repo / "stacks").glob("Pulumi.*.yaml"))}
    stacks.pop(None, None)
    packages = {p.stem: read_yaml(p) for p in sorted((repo / "packages").glob("*.yml"))}
    return stacks, package_files(packages)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tools/changed_stacks.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("base", nargs="?", help="a commit: the PR's base, or the push's `before`")
    parser.add_argument("head", nargs="?", help="a commit (default: the work tree)")
    parser.add_argument("--all", action="store_true", help="every stack, whatever changed")
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repo = Path(args.repo)
    stacks, packages = load_repo(repo)
    if not args.all and not args.base:
        parser.error("give BASE (a commit) or --all")
    if args.all or set(args.base) == {"0"}:  # a push that creates a branch has `before` = 000...0
        picked = {name: ["every stack was asked for"] for name in stacks}
    else:
        picked = affected(git_changed(args.base, args.head, repo), stacks, packages)
    for name, reasons in picked.items():
        print(f"{name}: {'; '.join(reasons)}", file=sys.stderr)
    if not picked:
        print("no stack is touched by this change", file=sys.stderr)
    print(json.dumps(sorted(picked)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
