"""`make demo`: two simulated Proxmox hosts, two catalog apps, the real `pulumi up`.

Everything lives under .demo/ in the checkout: the hosts (.demo/sim, with hosts.json),
the file backend (.demo/backend) and .demo/env, a file to source for running pulumi by hand.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time

import yaml

from sim import launcher
from sim.engine import PASSPHRASE, REPO, host_entries, offline_env

DEMO = REPO / ".demo"
SIM_DIR = DEMO / "sim"
BACKEND = DEMO / "backend"
STACK = "demo"
STACK_FILE = REPO / "stacks" / f"Pulumi.{STACK}.yaml"


def say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m", flush=True)


def _env() -> dict:
    BACKEND.mkdir(parents=True, exist_ok=True)
    return offline_env(BACKEND)


def _pulumi(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=REPO, env=env, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"pulumi {' '.join(args)} failed (exit {proc.returncode})")
    return proc


def _write_stack_hosts(hosts: list) -> None:
    """Point the demo stack's hosts at the simulated ones (ports and pinned keys change per run)."""
    text = STACK_FILE.read_text()
    data = yaml.safe_load(text)
    data["config"]["homefleet:hosts"] = host_entries(hosts)
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    STACK_FILE.write_text(header + yaml.safe_dump(data, sort_keys=False))


def _write_env_file(env: dict) -> None:
    lines = [
        "# source me: . .demo/env   (then: pulumi stack output -s demo, pulumi preview -s demo)",
        f"export PULUMI_BACKEND_URL={shlex.quote(env['PULUMI_BACKEND_URL'])}",
        f"export PULUMI_CONFIG_PASSPHRASE={shlex.quote(PASSPHRASE)}",
        "export PULUMI_SKIP_UPDATE_CHECK=true",
        "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
        f"export PULUMI_HOME={shlex.quote(env['PULUMI_HOME'])}",
        f"export PATH={shlex.quote(env['PATH'].split(':', 1)[0])}:\"$PATH\"",
    ]
    (DEMO / "env").write_text("\n".join(lines) + "\n")


def up() -> int:
    started = time.monotonic()
    if launcher.is_up(SIM_DIR):
        say("simulated hosts already running in .demo/sim")
    else:
        say("starting 2 simulated Proxmox hosts (real sshd, real skopeo, a local OCI registry)")
        launcher.up(SIM_DIR, hosts=2)
    hosts = json.loads((SIM_DIR / "hosts.json").read_text())["hosts"]
    _write_stack_hosts(hosts)
    env = _env()
    _write_env_file(env)
    if _pulumi(env, "stack", "select", STACK, check=False).returncode != 0:
        _pulumi(env, "stack", "init", STACK)
    say("pulumi up -s demo: jellyfin on pve1, vaultwarden on pve2")
    _pulumi(env, "up", "--yes", "--stack", STACK, "--suppress-progress")
    say("pulumi stack output -s demo")
    _pulumi(env, "stack", "output", "--stack", STACK)
    pve1 = hosts[0]
    known_hosts = DEMO / "known_hosts"
    known_hosts.write_text("".join(f"[{h['address']}]:{h['port']} {h['host_key']}\n" for h in hosts))
    print(f"""
Done in {time.monotonic() - started:.0f}s. Look inside:
  ssh -i .demo/sim/client_ed25519 -o UserKnownHostsFile=.demo/known_hosts -p {pve1['port']} \\
      root@{pve1['address']} pct list         # what pve1 has; also: pct config 100
  . .demo/env && pulumi stack output -s demo  # outputs, by hand
  . .demo/env && pulumi preview -s demo       # edit stacks/Pulumi.demo.yaml first to see a diff
  . .demo/env && pulumi destroy -s demo       # remove the apps
  make demo-down                              # stop the hosts and remove .demo/
""")
    return 0


def down() -> int:
    if SIM_DIR.exists():
        launcher.down(SIM_DIR)
    if DEMO.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(DEMO)], check=True)
    say("demo hosts stopped, .demo/ removed")
    return 0


def main(argv: list) -> int:
    if argv[:1] == ["up"]:
        return up()
    if argv[:1] == ["down"]:
        return down()
    print("usage: python -m sim.demo up|down", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
