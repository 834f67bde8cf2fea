"""The scenarios through Ansible (bench/ansible/deploy.yml): ansible-core's ordinary `ssh`
connection with pipelining and ControlPersist (one master connection per host, every task an
exec on it), `forks` = hosts, the linear strategy, no fact gathering.

Each scenario starts cold: the master connections of the previous one are closed (`ssh -O
exit`, outside the timing), as in a new terminal; within a run every task reuses them. The
masters detach from ansible-playbook, so their CPU is read from /proc and added to `cpu_s`.
Refresh is the playbook's read tasks (`--tags read`); destroy is `-e ct_state=absent`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from providers.hosts import pct
from sim.engine import host_entries
from sim.testing import SimFleet

from . import baseline, counters, fleet as bench_fleet
from .homefleet_side import UPDATED_MEMORY, children_cpu

PLAYBOOK = Path(__file__).resolve().parent / "ansible" / "deploy.yml"
FIRST_VMID = 5000    # fixed vmids, far above those `pvesh get /cluster/nextid` hands the others
TEMPLATE_DIR = "/var/lib/vz/template/cache"
PREFIX = "ansible-"


def ansible_bin(name: str) -> str:
    """The ansible-core CLI of the interpreter running the bench (the project venv's)."""
    found = Path(sys.executable).parent / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def host_vars(plan: dict, host: str, memory: dict) -> dict:
    """The host's templates and CTs. Archives get an `ansible-` prefix: the baseline pulls the
    same images under the same names on the same hosts, and Ansible must pull its own."""
    cts = []
    for index, ct in enumerate(c for c in plan["cts"] if c["host"] == host):
        vmid = FIRST_VMID + index
        create = dict(ct["create"])
        create["memory"] = str(memory.get(ct["app"], create["memory"]))
        template = ct["template"].replace("vztmpl/", "vztmpl/" + PREFIX, 1)
        cts.append({"vmid": vmid, "app": ct["app"], "memory": int(create["memory"]),
                    "create_argv": pct.create_argv(vmid, template, create),
                    "sets": [[k, v] for k, v in ct["separate"].items()],
                    "env": [f"{k}={v}" for k, v in ct["env"].items()]})
    templates = [{"path": f"{TEMPLATE_DIR}/{PREFIX}{t['archive']}", "pull_ref": t["pull_ref"]}
                 for t in plan["templates"] if t["host"] == host]
    return {"cts": cts, "templates": templates}


class AnsibleRunner:
    def __init__(self, workdir: Path, sim: SimFleet, size: bench_fleet.Size, ports: dict | None = None):
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sim = sim
        self.size = size
        self.hosts = bench_fleet.reachable_hosts(sim, ports or {})
        self.plan = baseline.make_plan(host_entries(self.hosts), bench_fleet.apps(size), self.hosts)
        # The control socket path must stay under the 108 bytes of a unix socket address.
        self.control_dir = Path(tempfile.mkdtemp(prefix="hf-ans-"))
        known = self.workdir / "known_hosts"
        known.write_text("".join(f"[{h['address']}]:{h['port']} {h['host_key']}\n" for h in self.hosts))
        self.config = self.workdir / "ansible.cfg"
        self.config.write_text(f"""\
[defaults]
forks = {len(self.hosts)}
host_key_checking = True
interpreter_python = /usr/bin/python3
retry_files_enabled = False
stdout_callback = default
local_tmp = {self.workdir / 'tmp'}

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes
control_path = {self.control_dir}/%%C
""")
        self.inventory = self.workdir / "inventory.yml"
        self._write({})

    def _write(self, memory: dict) -> None:
        hosts = {}
        for h in self.hosts:
            hosts[h["name"]] = {"ansible_host": h["address"], "ansible_port": h["port"], "ansible_user": h["user"],
                                "ansible_ssh_private_key_file": h["client_key"],
                                **host_vars(self.plan, h["name"], memory)}
        self.inventory.write_text(yaml.safe_dump({"pve": {"hosts": hosts}}, sort_keys=False))

    def _env(self) -> dict:
        env = dict(os.environ)
        env.update(ANSIBLE_CONFIG=str(self.config), ANSIBLE_HOME=str(self.workdir / "home"),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        return env

    def close(self) -> None:
        """End the master connections (ControlPersist) so the next scenario starts cold."""
        for sock in self.control_dir.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
                           capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        while any(self.control_dir.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)

    def masters_cpu(self) -> float:
        """CPU seconds of the ControlPersist masters (they detach, so RUSAGE_CHILDREN misses
        them; they do the connection's crypto). They were started by this scenario."""
        total = 0.0
        for sock in self.control_dir.iterdir():
            check = subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "check", "x"],
                                   capture_output=True, text=True, timeout=30)
            match = re.search(r"pid=(\d+)", check.stderr + check.stdout)
            if not match:
                continue
            try:
                stat = Path(f"/proc/{match.group(1)}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        self.close()
        shutil.rmtree(self.control_dir, ignore_errors=True)

    def run(self, scenario: str) -> dict:
        extra = []
        if scenario == "up":
            self._write({})
        elif scenario == "update":
            self._write({bench_fleet.app_name(bench_fleet.host_names(self.size)[0], 0): UPDATED_MEMORY})
        elif scenario == "refresh":
            extra = ["--tags", "read"]
        elif scenario == "destroy":
            extra = ["-e", "ct_state=absent"]
        argv = [ansible_bin("ansible-playbook"), "-i", str(self.inventory), str(PLAYBOOK), *extra]
        self.close()
        start = counters.mark(self.sim)
        cpu = children_cpu()
        began = time.monotonic()
        proc = subprocess.run(argv, cwd=self.workdir, env=self._env(), capture_output=True, text=True,
                              timeout=3600)
        wall = time.monotonic() - began
        cpu = children_cpu() - cpu + self.masters_cpu()
        (self.workdir / f"{scenario}.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError(f"ansible {scenario} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        activity = counters.since(self.sim, start)
        return {
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            **counters.summary(activity, self.size.cts),
            "peak_rss_mb": None,
            "processes": None,
            "changed": _changed(proc.stdout),
            "_activity": activity,
        }


def _changed(stdout: str) -> int | None:
    """The sum of `changed=N` over the PLAY RECAP lines."""
    total, seen = 0, False
    for line in stdout.splitlines():
        if "changed=" in line and "ok=" in line:
            seen = True
            total += int(line.split("changed=")[1].split()[0])
    return total if seen else None
