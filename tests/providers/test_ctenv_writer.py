"""The env writer (providers/hosts/ctenv.py) against a simulated PVE host over real SSH: it
behaves as PVE's own config writers do (issue 13 item 5)."""

import fcntl
import time

import pytest

from providers.hosts import ctenv, pct
from providers.transport import SshTarget, TransportError, run
from sim.testing import ssh_run

VMID = 720
TEMPLATE = "alpine-3.22-default_20250617_amd64.tar.xz"


def _target(host) -> SshTarget:
    return SshTarget(name=host.name, address=host.address, port=host.port, user=host.user,
                     host_key=host.host_key, key_file=host.client_key)


def _sh(host, command: str) -> str:
    rc, out, err = ssh_run(host, ["sh", "-c", command])
    assert rc == 0, err
    return out


def _env(host) -> list:
    rc, out, err = ssh_run(host, pct.config_argv(VMID))
    assert rc == 0, err
    return pct.parse_config(out).get("env", [])


@pytest.fixture
def ct(sim_hosts):
    host = sim_hosts["pve1"]
    ssh_run(host, ["pct", "destroy", str(VMID), "--purge", "1", "--force", "1"])  # a leftover of a killed run
    _sh(host, f"pveam download local {TEMPLATE} >/dev/null && pct create {VMID} local:vztmpl/{TEMPLATE} "
              "--rootfs local-zfs:1 --env KEEP=1 >/dev/null")
    yield host
    ssh_run(host, ["sh", "-c", f"sed -i '/^lock:/d' /etc/pve/lxc/{VMID}.conf; "
                               f"pct destroy {VMID} --purge 1 --force 1"])


def _write(host, env: dict, mode: str = "replace", timeout: float = 60):
    return run(_target(host), ctenv.write_argv(VMID, mode), stdin=ctenv.stdin_data(env), timeout=timeout)


def test_a_locked_config_is_refused(ct):
    """A `lock:` (a backup, a migration) means hands off, as AbstractConfig.pm check_lock says."""
    _sh(ct, f"sed -i '/^arch:/i lock: backup' /etc/pve/lxc/{VMID}.conf")
    before = _sh(ct, f"cat /etc/pve/lxc/{VMID}.conf")
    result = _write(ct, {"NEW": "1"})
    assert not result.ok and "CT is locked (backup)" in result.stderr, result
    assert _sh(ct, f"cat /etc/pve/lxc/{VMID}.conf") == before


def test_the_flock_is_waited_for_at_most_10_seconds(ct):
    with open(ct.state / "lock" / f"pve-config-{VMID}.lock", "a") as held:  # /run/lock/lxc on the host
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        try:
            result = _write(ct, {"NEW": "1"}, timeout=30)
        except TransportError as exc:
            pytest.fail(f"the writer waited for the lock without end: {exc}")
        waited = time.monotonic() - started
    assert not result.ok and f"can't lock file '/run/lock/lxc/pve-config-{VMID}.lock' - got timeout" in result.stderr
    assert 9 <= waited < 20, waited
    assert _env(ct) == ["KEEP=1"]


def test_an_env_pending_from_a_running_ct_does_not_override_the_written_one(ct):
    """`pct set --env` on a running CT stays under [pve:pending] until the next start, which
    would replace what the writer put in the main section (Config.pm vmconfig_apply_pending)."""
    _sh(ct, f"pct start {VMID} && pct set {VMID} --env STALE=1 && pct stop {VMID}")
    assert "[pve:pending]" in _sh(ct, f"cat /etc/pve/lxc/{VMID}.conf")
    result = _write(ct, {"KEEP": "2"}, mode="merge")
    assert result.ok, result.stderr
    assert ctenv.parse_previous(result.stdout) == ["STALE=1"], "merged over the env the next start would apply"
    _sh(ct, f"pct start {VMID}")
    assert _env(ct) == ["STALE=1", "KEEP=2"]
    assert "[pve:pending]" not in _sh(ct, f"cat /etc/pve/lxc/{VMID}.conf")
