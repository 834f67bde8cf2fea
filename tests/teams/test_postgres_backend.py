"""Team state in a real PostgreSQL server (Pulumi's DIY `postgres://` backend, pulumi
pkg/backend/diy/postgres), driven by the real CLI against simulated hosts.

- the whole lifecycle with the state only in the database, over TLS with the server verified;
- two `up` of one stack at once: one runs, the other is refused with Pulumi's lock message before
  its program runs; a third `up` of another stack at the same moment goes through;
- the database stopped in the middle of an `up`: once it is back (and the stale lock the failed run
  could not delete is cleared with `pulumi cancel`), the next `up` converges and nothing on the
  hosts is left outside the state.
"""

import base64
import json
import subprocess
import time

import pytest

from sim.testing import set_latency, tool_calls

from ..engine.helpers import ct_config, ct_list
from .conftest import hosts_config

pytestmark = pytest.mark.engine
LOCKED = "the stack is currently locked by 1 lock(s)"
# Pulumi keeps the URL's path (the database name) as a prefix of every key.
ROOT = "pulumi/.pulumi/"


def state_keys(pg) -> list:
    return [row[0] for row in pg.sql("SELECT key FROM pulumi_state ORDER BY key")]


def checkpoint(pg, stack: str) -> dict:
    """The stack's checkpoint as Pulumi stored it: JSON {"data": base64 of the state file}."""
    rows = pg.sql(f"SELECT data FROM pulumi_state WHERE key = '{ROOT}stacks/homefleet/{stack}.json'")
    assert len(rows) == 1, rows
    return json.loads(base64.b64decode(json.loads(rows[0][0])["data"]))


def managed(pg, stack: str) -> dict:
    """{app name: vmid} of the ProxmoxCTs the stored state holds."""
    resources = checkpoint(pg, stack)["checkpoint"].get("latest", {}).get("resources") or []
    return {r["urn"].rsplit("::", 1)[-1]: r["outputs"]["vmid"] for r in resources
            if r["type"].endswith("ProxmoxCT")}


def cts_of(host, stack: str) -> dict:
    """{CT name: vmid} of the CTs on a host that say they belong to `stack`."""
    out = {}
    for row in ct_list(host):
        if f"stack={stack} " in ct_config(host, row["vmid"]).get("description", ""):
            assert row["name"] not in out, f"two CTs named {row['name']} on {host.name}"
            out[row["name"]] = row["vmid"]
    return out


def start(project, *args, stack: str) -> subprocess.Popen:
    return subprocess.Popen(["pulumi", *args, "--non-interactive", "--stack", stack], cwd=project.workdir,
                            env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_lifecycle_with_state_only_in_postgres(fleet, pg, pg_project):
    stack = "team"
    pg_project.write_stack(stack, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": {
        "team-web": {"host": "pve1", "image": "docker.io/library/nginx:1.27", "memory": 128},
        "team-tool": {"host": "pve2", "image": "docker.io/library/alpine:3.20", "memory": 64}}})
    up = pg_project.pulumi("up", "--yes", stack=stack, check=True)
    assert "created" in up.stdout
    assert f"{ROOT}stacks/homefleet/team.json" in state_keys(pg)
    assert not (pg_project.backend / ".pulumi").exists(), "no state may land in a local folder"
    assert set(managed(pg, stack)) == {"team-web", "team-tool"}
    assert managed(pg, stack) == {**cts_of(fleet["pve1"], stack), **cts_of(fleet["pve2"], stack)}

    assert pg_project.pulumi("preview", "--expect-no-changes", stack=stack).ok
    refresh = pg_project.pulumi("refresh", "--yes", "--expect-no-changes", stack=stack)
    assert refresh.ok, refresh
    pg_project.pulumi("destroy", "--yes", stack=stack, check=True)
    assert cts_of(fleet["pve1"], stack) == {} and cts_of(fleet["pve2"], stack) == {}
    assert managed(pg, stack) == {}
    assert not [k for k in state_keys(pg) if k.startswith(f"{ROOT}locks/")], "every lock released"
    for run in (up, refresh):
        assert pg.password not in run.stdout + run.stderr


def test_tls_verifies_the_server(pg, pg_project, tmp_path):
    """Every run here uses sslmode=verify-full; with another CA the CLI refuses the server. Without
    sslmode the driver (lib/pq) still uses TLS ("require": the server takes no other), but checks
    no certificate; with sslmode=disable the server refuses the client."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", "other.key", "-out", "other.crt", "-subj", "/CN=another CA", "-days", "1"],
                   cwd=tmp_path, check=True, capture_output=True)
    env = dict(pg_project.env)
    try:
        pg_project.env["PULUMI_BACKEND_URL"] = pg.url(password=False, sslrootcert=str(tmp_path / "other.crt"))
        wrong_ca = pg_project.pulumi("stack", "ls")
        pg_project.env["PULUMI_BACKEND_URL"] = pg.url(password=False, sslmode=None, sslrootcert=None)
        default = pg_project.pulumi("stack", "ls")
        pg_project.env["PULUMI_BACKEND_URL"] = pg.url(password=False, sslmode="disable", sslrootcert=None)
        plain = pg_project.pulumi("stack", "ls")
    finally:
        pg_project.env.clear()
        pg_project.env.update(env)
    assert not wrong_ca.ok and "certificate signed by unknown authority" in wrong_ca.stderr, wrong_ca
    assert default.ok, default
    assert not plain.ok and "no pg_hba.conf entry" in plain.stderr and "no encryption" in plain.stderr, plain


def test_one_stack_locked_while_another_goes_through(fleet, pg, pg_project):
    """A holds the lock of `shared`; B (same stack) is refused and runs nothing; C (other stack) succeeds."""
    config = {"homefleet:hosts": hosts_config(fleet)}
    pg_project.write_stack("shared", {**config, "homefleet:apps": {
        "shared-web": {"host": "pve1", "image": "docker.io/library/nginx:1.27", "memory": 64}}})
    pg_project.write_stack("other", {**config, "homefleet:apps": {
        "other-web": {"host": "pve2", "image": "docker.io/library/nginx:1.27", "memory": 64}}})
    set_latency(fleet["pve1"], 150)  # A holds its lock for a while
    try:
        a = start(pg_project, "up", "--yes", stack="shared")
        wait_for(lambda: [k for k in state_keys(pg) if k.startswith(f"{ROOT}locks/organization/homefleet/shared/")],
                 "A's lock row")
        b = start(pg_project, "up", "--yes", stack="shared")
        c = start(pg_project, "up", "--yes", stack="other")
        b_out, b_err = b.communicate(timeout=300)
        assert a.poll() is None, "B must be refused while A still runs"
        c_out, c_err = c.communicate(timeout=600)
        a_out, a_err = a.communicate(timeout=600)
    finally:
        set_latency(fleet["pve1"], 0)
    assert a.returncode == 0, a_out + a_err
    assert c.returncode == 0, c_out + c_err
    assert b.returncode != 0 and LOCKED in b_err, b_out + b_err
    assert "created" not in b_out and "shared-web" not in b_out, "B must not have planned or run anything"
    assert pg.password not in b_out + b_err
    assert list(cts_of(fleet["pve1"], "shared")) == ["shared-web"], "exactly one CT: A's"
    assert managed(pg, "shared") == cts_of(fleet["pve1"], "shared")
    assert managed(pg, "other") == cts_of(fleet["pve2"], "other") and list(managed(pg, "other")) == ["other-web"]
    for stack in ("shared", "other"):
        pg_project.pulumi("destroy", "--yes", stack=stack, check=True)


def test_database_stopped_during_up_then_next_up_converges(fleet, pg, pg_project):
    """Pulumi retries a failed checkpoint write 11 times (about 30 s, diy/state.go saveCheckpoint);
    a database that stays down fails the run, and its lock row, which it could not delete, stays
    behind: the next `up` is refused until `pulumi cancel` clears it (docs/teams.md)."""
    stack = "outage"
    apps = {f"outage-{i}": {"host": "pve1", "image": "docker.io/library/alpine:3.20", "memory": 64}
            for i in range(1)}
    pg_project.write_stack(stack, {"homefleet:hosts": hosts_config(fleet), "homefleet:apps": apps})
    pve1 = fleet["pve1"]
    delay = pve1.state / "create_delay_ms"
    delay.write_text("5000\n")  # each `pct create` takes 5 s: the database goes away meanwhile
    seen = len(tool_calls(pve1))
    try:
        run = start(pg_project, "up", "--yes", stack=stack)
        wait_for(lambda: any(c["tool"] == "pct" and c["argv"][:1] == ["create"] for c in tool_calls(pve1)[seen:]),
                 "the run's pct create", timeout=300)
        pg.stop("immediate")
        out, err = run.communicate(timeout=600)
    finally:
        delay.unlink()
        if not pg.running:
            pg.start()
    assert run.returncode != 0 and "failed to save snapshot" in out, out + err
    assert pg.password not in out + err
    on_host = cts_of(pve1, stack)

    refused = pg_project.pulumi("up", "--yes", stack=stack)
    assert not refused.ok and LOCKED in refused.stderr, refused
    assert cts_of(pve1, stack) == on_host, "the refused run changed nothing"
    pg_project.pulumi("cancel", "--yes", stack=stack, check=True)

    after = pg_project.pulumi("up", "--yes", stack=stack, check=True)
    assert set(cts_of(pve1, stack)) == set(apps), after
    assert managed(pg, stack) == cts_of(pve1, stack), "every CT on the host is in the state, once"
    assert pg_project.pulumi("preview", "--expect-no-changes", stack=stack).ok
    pg_project.pulumi("destroy", "--yes", stack=stack, check=True)
    assert cts_of(pve1, stack) == {}, "nothing left behind on the host"
