"""The health gate on a Proxmox host: one SSH exec that loops until the app is healthy or the
deadline passes, and the parser of what it prints. Pure builders and parsers.

Healthy = the CT runs (an application container's init is its entrypoint: when the entrypoint
exits, lxc stops the CT), it has stayed running for `settle` seconds (`pct status --verbose`
`uptime`, so an entrypoint that crashes shortly after its start is caught), and the check
passes (providers/health.py defines the checks):

- `exec`: `pct exec <vmid> -- <test...>` (a compose `healthcheck:`), each run bounded by its
  `timeout` (coreutils `timeout`);
- `http`: `curl -fsS` to `http://<ip>:<port><path>` from the host (PVE ships curl; exit 22 on
  a status >= 400, 7 when nothing listens);
- `tcp`: the port accepts a connection: curl's `%{num_connects}` is 1 whatever the protocol
  spoken there (curl gives up after `-m 2` on a silent server);
- `none`: running and alive only.

On failure the script prints the check's last output and the last lines of lxc-start's stderr
for the CT (`/run/pve/ct-<vmid>.stderr`: pve-container's `pve-container@.service` sends it
there and `PVE::LXC::vm_start` prints it when a start fails) and exits 3.
"""

from dataclasses import dataclass
from typing import Optional

from . import pct
from .script import q, section, sh, split_sections

UNHEALTHY_EXIT = 3
LOG_LINES = 20
CT_LOG = "/run/pve/ct-{vmid}.stderr"


def check_lines(vmid: int, check: dict) -> list:
    """Shell lines that run the check once: `out` gets its output, `rc` its exit status."""
    kind = check.get("kind", "none")
    if kind == "exec":
        limit = max(1, int(check.get("timeout") or 30))
        argv = ["timeout", str(limit), "pct", "exec", str(vmid), "--", *check["test"]]
        return [f"out=$({q(argv)} </dev/null 2>&1)", "rc=$?"]
    if kind in ("http", "tcp"):
        port = int(check["port"])
        if kind == "http":
            path = "/" + str(check.get("path") or "/").lstrip("/")
            curl = q(["curl", "-fsS", "-m", "5", "-o", "/dev/null", "-w", "HTTP %{http_code}"])
            url = f'"http://$ip:{port}"{q([path])}'
            return ['if [ -z "$ip" ]; then out="no IPv4 address on the CT yet"; rc=1; else',
                    f"  out=$({curl} {url} 2>&1)", "  rc=$?", "fi"]
        curl = q(["curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{num_connects}"])
        return ['if [ -z "$ip" ]; then out="no IPv4 address on the CT yet"; rc=1; else',
                f'  n=$({curl} "http://$ip:{port}/" 2>/dev/null)',
                f'  if [ "$n" = 1 ]; then out="port {port} accepts connections"; rc=0; '
                f'else out="port {port} on $ip accepts no connection"; rc=1; fi',
                "fi"]
    return ['out=""', "rc=0"]


def _ip_lines(vmid: int, ip: Optional[str]) -> list:
    """`ip`: the address the provider knows, else the CT's first IPv4 now (`lxc-info -iH`)."""
    return [f"ip={q([ip or ''])}",
            'if [ -z "$ip" ]; then ip=$(' + q(["lxc-info", "-n", str(vmid), "-iH"])
            + " 2>/dev/null | grep -v : | head -n 1); fi"]


def docker_verdict_after(check: dict) -> Optional[int]:
    """Seconds after its start at which Docker would call a service whose healthcheck still fails
    `unhealthy`: failures count once `start_period` is over, and `retries` of them one `interval`
    apart make the verdict (docker/cli's healthcheck docs; the compose defaults 30 s, 3, 0 s are
    filled in by homefleet/compose/health.py). None for the other checks."""
    if check.get("kind") != "exec" or check.get("retries") is None or check.get("interval") is None:
        return None
    return int(float(check.get("start_period") or 0) + int(check["retries"]) * max(1.0, float(check["interval"])))


def wait_script(vmid: int, check: dict, ip: Optional[str], timeout: int, settle: int, interval: float = 1) -> list:
    """Loop until healthy (exit 0) or `timeout` seconds pass (exit 3, with the evidence); a compose
    healthcheck that still fails when Docker would have called it unhealthy ends it sooner."""
    status = q(pct.status_argv(vmid) + ["--verbose"])
    verdict_after = docker_verdict_after(check)
    give_up = [] if verdict_after is None else [
        f'        if [ "${{up:-0}}" -ge {verdict_after} ]; then',
        f'          why="unhealthy by its own healthcheck: still failing {verdict_after} s after the start '
        f'(start_period + retries x interval, when Docker says unhealthy)"; break',
        "        fi"]
    lines = [
        "set -u",
        f"deadline=$(( $(date +%s) + {int(timeout)} ))",
        # a check that passes in time waits out the rest of the settle window past the deadline
        f"settle_end=$(( deadline + {int(settle)} ))",
        'out=""; rc=1; why="the check did not pass"',
        *_ip_lines(vmid, ip),
        "while :; do",
        f"  st=$({status} </dev/null 2>&1)",
        "  case $st in",
        "    *'status: running'*)",
        *["      " + line for line in check_lines(vmid, check)],
        "      up=$(printf '%s\\n' \"$st\" | sed -n 's/^uptime: //p')",
        '      if [ "$rc" = 0 ]; then',
        f'        if [ "${{up:-0}}" -ge {int(settle)} ]; then ' + q(["echo", "homefleet-health: healthy"]) + "; exit 0; fi",
        f'        why="running for ${{up:-0}} s of the {int(settle)} s it must stay up"',
        '        [ "$(date +%s)" -lt "$settle_end" ] && { sleep ' + f'{interval}; continue; }}',
        "      else",
        '        why="the check failed (exit $rc)"',
        *give_up,
        "      fi ;;",
        "    *'status: stopped'*)",
        '      why="the CT stopped: its entrypoint exited"; out="$st"; break ;;',
        "    *)",
        '      why="pct status failed"; out="$st" ;;',
        "  esac",
        '  [ "$(date +%s)" -ge "$deadline" ] && break',
        f"  sleep {interval}",
        "done",
        *_evidence(vmid),
        f"exit {UNHEALTHY_EXIT}",
    ]
    return sh(lines)


def probe_script(vmid: int, check: dict, ip: Optional[str]) -> list:
    """One look, no waiting (for `pulumi refresh`): exit 0 healthy, 3 not (with the evidence)."""
    status = q(pct.status_argv(vmid) + ["--verbose"])
    return sh([
        "set -u",
        'out=""; rc=1',
        *_ip_lines(vmid, ip),
        f"st=$({status} </dev/null 2>&1)",
        "case $st in",
        "  *'status: running'*)",
        *["    " + line for line in check_lines(vmid, check)],
        '    if [ "$rc" = 0 ]; then ' + q(["echo", "homefleet-health: healthy"]) + "; exit 0; fi",
        '    why="the check failed (exit $rc)" ;;',
        '  *) why="the CT is not running"; out="$st" ;;',
        "esac",
        *_evidence(vmid),
        f"exit {UNHEALTHY_EXIT}",
    ])


def _evidence(vmid: int) -> list:
    log = CT_LOG.format(vmid=vmid)
    return [
        q(["echo", "homefleet-health: unhealthy"]),
        section("why"),
        "printf '%s\\n' \"$why\"",
        section("check"),
        f"printf '%s\\n' \"$out\" | tail -n {LOG_LINES}",
        section("log"),
        f"tail -n {LOG_LINES} {q([log])} 2>/dev/null || true",
    ]


@dataclass
class Health:
    healthy: bool
    why: str = ""
    check_output: str = ""
    log: str = ""

    def evidence(self, vmid: int) -> str:
        parts = [self.why or "unhealthy"]
        if self.check_output.strip():
            parts.append("last check output:\n" + self.check_output.strip())
        parts.append(f"last lines of {CT_LOG.format(vmid=vmid)}:\n" + (self.log.strip() or "(empty)"))
        return "\n".join(parts)


def parse(stdout: str, rc: int) -> Optional[Health]:
    """The script's verdict, or None when it printed none (the SSH exec itself failed)."""
    if rc == 0 and "homefleet-health: healthy" in stdout:
        return Health(True)
    if rc != UNHEALTHY_EXIT or "homefleet-health: unhealthy" not in stdout:
        return None
    parts = split_sections(stdout)
    return Health(False, parts.get("why", "").strip(), parts.get("check", "").strip("\n"), parts.get("log", "").strip("\n"))
