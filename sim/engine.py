"""The real Pulumi CLI, run locally and offline against simulated hosts.

A `LocalProject` is a copy of the homefleet program in a work folder (its own `stacks/`,
the repo's `.venv` linked in), with a `file://` backend, a passphrase for secrets, and
update checks and plugin downloads off. Tests, the demo and the benchmark all use it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

REPO = Path(__file__).resolve().parent.parent
PROGRAM_FILES = ("Pulumi.yaml", "__main__.py", "requirements.txt")
PROGRAM_DIRS = ("homefleet", "providers", "packages")
PASSPHRASE = "homefleet-local-demo"


def tools_bin() -> Path:
    """The folder holding a Pulumi CLI compatible with the SDK pin (tools/pulumi.sh)."""
    out = subprocess.run([str(REPO / "tools" / "pulumi.sh")], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def offline_env(backend_dir: Path, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update({
        "PULUMI_BACKEND_URL": f"file://{backend_dir}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "PULUMI_HOME": str(backend_dir / ".pulumi-home"),
        "PATH": f"{tools_bin()}:{env.get('PATH', '')}",
    })
    env.pop("PULUMI_ACCESS_TOKEN", None)
    env.update(extra or {})
    return env


@dataclass
class Run:
    args: list
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def json(self):
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"pulumi {' '.join(self.args)} -> {self.returncode}\n{self.stdout}\n{self.stderr}"


@dataclass
class LocalProject:
    workdir: Path
    backend: Path
    env: dict = field(default_factory=dict)

    @classmethod
    def create(cls, workdir: Path, link_program: bool = False) -> "LocalProject":
        """Copy (or link) the program into `workdir`; the backend lives in `workdir/.backend`."""
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        for name in PROGRAM_FILES + PROGRAM_DIRS:
            src, dst = REPO / name, workdir / name
            if dst.exists() or dst.is_symlink():
                continue
            if link_program:
                dst.symlink_to(src)
            elif src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, dst)
        venv = workdir / ".venv"
        if not venv.exists():
            venv.symlink_to(REPO / ".venv")
        (workdir / "stacks").mkdir(exist_ok=True)
        backend = workdir / ".backend"
        backend.mkdir(exist_ok=True)
        return cls(workdir, backend, offline_env(backend))

    def pulumi(self, *args, stack: str | None = None, check: bool = False, timeout: float = 1800,
               input: str | None = None) -> Run:
        argv = ["pulumi", *args, "--non-interactive"]
        if stack:
            argv += ["--stack", stack]
        proc = subprocess.run(argv, cwd=self.workdir, env=self.env, capture_output=True, text=True,
                              timeout=timeout, input=input)
        run = Run(list(args), proc.returncode, proc.stdout, proc.stderr)
        if check and not run.ok:
            raise AssertionError(str(run))
        return run

    def stack_file(self, stack: str) -> Path:
        return self.workdir / "stacks" / f"Pulumi.{stack}.yaml"

    def write_stack(self, stack: str, config: dict) -> None:
        """Write `stacks/Pulumi.<stack>.yaml` (plain keys), creating the stack if needed."""
        if not (self.backend / ".pulumi" / "stacks" / "homefleet" / f"{stack}.json").exists():
            init = self.pulumi("stack", "init", stack)
            if not init.ok and "already exists" not in init.stderr:
                raise AssertionError(str(init))
        path = self.stack_file(stack)
        existing = yaml.safe_load(path.read_text()) if path.exists() else {}
        existing = existing or {}
        existing["config"] = {**{k: v for k, v in (existing.get("config") or {}).items()
                                 if isinstance(v, dict) and "secure" in v}, **config}
        path.write_text(yaml.safe_dump(existing, sort_keys=False))

    def set_secret(self, stack: str, key: str, value: str, path: bool = False) -> None:
        run = subprocess.run(["pulumi", "config", "set", "--secret", *(["--path"] if path else []), key,
                              "--stack", stack, "--non-interactive"], cwd=self.workdir, env=self.env,
                             input=value, capture_output=True, text=True)
        if run.returncode != 0:
            raise AssertionError(run.stderr)

    def state_file(self, stack: str) -> Path:
        return self.backend / ".pulumi" / "stacks" / "homefleet" / f"{stack}.json"


def host_entries(hosts: list, storage: str = "local-zfs", template_storage: str = "local",
                 health_settle: Optional[int] = None) -> dict:
    """`homefleet:hosts` for simulated hosts (from hosts.json), with pinned host keys;
    `health_settle` sets every host's healthSettle (the stack default, 5 s, when None)."""
    out = {}
    for host in hosts:
        entry = {
            "kind": host["kind"],
            "address": host["address"],
            "port": host["port"],
            "user": host["user"],
            "hostKey": host["host_key"],
            "keyFile": host["client_key"],
        }
        if host["kind"] == "proxmox":
            entry.update({"storage": storage, "templateStorage": template_storage})
        if health_settle is not None:
            entry["healthSettle"] = health_settle
        out[host["name"]] = entry
    return out
