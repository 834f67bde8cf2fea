"""Health of a Proxmox app, defined once: what is checked, waiting for it, one look at it.

The check (ProxmoxCT input `health`, set by homefleet/plan.py):
- `{"kind": "exec", "test": [...], "interval", "timeout", "retries", "start_period"}`: a
  compose `healthcheck:`, run inside the CT with `pct exec`;
- `{"kind": "http", "port": n, "path": "/x"}` / `{"kind": "tcp", "port": n}`: a package's
  `health:`, probed from the host;
- None: the first published TCP port (`ports`) accepts a connection, or only "running and
  alive" when the app publishes none;
- `{"kind": "none"}` (compose `disable: true`): only "running and alive".

`wait_healthy` is the gate after a create, a start or a restart (and after an upgrade,
providers/upgrade.py); the host loops (providers/hosts/health.py), so a wait is one SSH exec.
"""

import time
from typing import Optional

from .errors import HostCommandError
from .hosts import health as host_health
from .transport import SshTarget, run
from .upgrade_inputs import DEFAULTS

DEFAULT_TIMEOUT = DEFAULTS["health_timeout"]
# The CT must have been up this long when the check passes (the stack's healthSettle): an
# entrypoint that crashes right after its start (a failed migration) is caught. Counted from the
# CT's start (`uptime`), so it costs only what is left of it after the start and the steps that
# follow; the timeout never cuts it short (a passing check waits it out).
SETTLE_SECONDS = DEFAULTS["health_settle"]
SSH_MARGIN = 60


class UnhealthyError(HostCommandError):
    """The app did not become healthy in time; the message carries the evidence in full."""

    def __init__(self, host: str, step: str, vmid: int, result: host_health.Health):
        evidence = result.evidence(vmid)
        super().__init__(host, step, evidence)
        self.args = (f"host {host}: {step} failed: {evidence}",)
        self.health = result


def check_of(props: dict) -> dict:
    """The check this app's CT is held to (see the module doc)."""
    health = props.get("health")
    if isinstance(health, dict) and health.get("kind"):
        return health
    for port in props.get("ports") or []:
        if str(port.get("protocol") or "tcp").lower() == "tcp" and port.get("port"):
            return {"kind": "tcp", "port": int(port["port"])}
    return {"kind": "none"}


def timeout_of(props: dict) -> int:
    return int(props.get("health_timeout") or DEFAULT_TIMEOUT)


def settle_of(props: dict) -> int:
    value = props.get("health_settle")
    return SETTLE_SECONDS if value is None else int(value)


def describe(check: dict) -> str:
    kind = check.get("kind")
    if kind == "exec":
        return "healthcheck `" + " ".join(check.get("test") or []) + "`"
    if kind == "http":
        return f"HTTP {check.get('path') or '/'} on port {check['port']}"
    if kind == "tcp":
        return f"TCP port {check['port']}"
    return "running"


def wait_healthy(target: SshTarget, props: dict, vmid: int, ip: Optional[str], deadline: float) -> None:
    """Wait until CT `vmid` runs, has stayed up for the settle window and passes its check;
    `deadline` is a `time.time()` value. Raises UnhealthyError with the check's last output
    and the last lines of the CT's log, or HostCommandError when the host could not be asked."""
    check = check_of(props)
    left = max(0, int(deadline - time.time()))
    settle = settle_of(props)
    argv = host_health.wait_script(vmid, check, ip, left, settle)
    result = run(target, argv, timeout=left + settle + SSH_MARGIN)
    verdict = host_health.parse(result.stdout, result.exit_code)
    step = f"waiting for {props.get('app', 'the app')} (CT {vmid}) to be healthy: {describe(check)}, {left} s"
    if verdict is None:
        raise HostCommandError(target.name, step, result.stderr or result.stdout)
    if not verdict.healthy:
        raise UnhealthyError(target.name, step, vmid, verdict)


def probe(target: SshTarget, props: dict, vmid: int, ip: Optional[str]) -> bool:
    """One look, no waiting (`pulumi refresh`): healthy now? False when the host cannot say.
    Call it for a running CT only: with no check beyond "running", that is the answer (no exec)."""
    check = check_of(props)
    if check.get("kind") == "none":
        return True
    result = run(target, host_health.probe_script(vmid, check, ip), timeout=SSH_MARGIN)
    verdict = host_health.parse(result.stdout, result.exit_code)
    return bool(verdict and verdict.healthy)
