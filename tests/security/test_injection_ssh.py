"""Hostile values over real SSH: the simulated tools log argv exactly as they received it
(tools.log), which must be byte for byte what the builders made; the host's command log
holds exactly the command lines the transport sent and nothing else; and the canary file
the values try to create on the host never appears.

A few hundred cases: each is an SSH exec and a fake-tool process. The full create path with
hostile values runs a handful of times (a real CT each), since it costs seconds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from homefleet.config import load
from homefleet.errors import ConfigError
from homefleet.plan import make_plan
from providers.hosts import ctops, midclt, pct
from providers.oci_template import OciTemplateProvider
from providers.proxmox_ct import ProxmoxCTProvider
from providers.transport import SshTarget, TransportError, run
from providers.transport.quoting import remote_command_line
from providers.transport.run import MAX_COMMAND_LINE
from sim.testing import ssh_run

from . import figures
from .cases import REPO, STACK, base_stack
from .hostile import RUN_TOKEN, hostile, set_canary
from .live import HostLog, target

EXAMPLES = int(os.environ.get("HOMEFLEET_INJECTION_SSH_EXAMPLES", "70"))
CREATES = int(os.environ.get("HOMEFLEET_INJECTION_CREATES", "4"))
CANARY = Path(f"/tmp/homefleet-canary-ssh-{RUN_TOKEN}")
ABSENT = 999999  # no CT has this vmid: the tools log the call, refuse it, and change nothing


@pytest.fixture(scope="module", autouse=True)
def canary():
    set_canary(str(CANARY))  # on the simulated hosts' filesystem (they share the machine's /tmp)
    yield CANARY
    assert not CANARY.exists(), "a hostile value ran a command on a simulated host"


def _builders(value: str) -> list:
    """(host kind, argv) for one value: a plain pct call, a script, a midclt call."""
    return [
        ("proxmox", pct.set_argv(ABSENT, {"description": value, "hostname": value})),
        ("proxmox", ctops.update_script(ABSENT, {"description": value}, [], None, False, False)),
        ("truenas", midclt.call_argv("app.query", midclt.name_filter(value))),
    ]


def test_hostile_argv_reaches_the_tools_byte_for_byte(security_fleet):
    pve, nas = security_fleet["pve1"], security_fleet["nas1"]
    targets = {"proxmox": (pve, SshTarget.from_dict(target(pve))), "truenas": (nas, SshTarget.from_dict(target(nas)))}
    tried, refused = [0], [0]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=(Phase.explicit, Phase.generate))
    @given(hostile(sizes=(2_000, 9_000)))
    def one(value):
        try:
            built = _builders(value)
        except ValueError:  # NUL or a lone surrogate: scripts quote as they are built
            tried[0] += 3
            refused[0] += 3
            return
        for kind, argv in built:
            host, tgt = targets[kind]
            tried[0] += 1
            try:
                line = remote_command_line(argv)
            except ValueError:
                refused[0] += 1  # NUL or a lone surrogate: refused before anything is sent
                continue
            log = HostLog(host)
            if len(line.encode()) > MAX_COMMAND_LINE:
                with pytest.raises(TransportError, match="nothing was sent"):
                    run(tgt, argv, timeout=60)
                assert log.commands() == [] and log.sent() == 0
                refused[0] += 1
                continue
            result = run(tgt, argv, timeout=60)
            assert log.commands() == [line], "the host received other command lines than the one sent"
            assert log.sent() == 1
            tools = log.tools()
            if argv[:2] == ["sh", "-c"]:
                want = pct.set_argv(ABSENT, {"description": value})
                assert tools == [want], f"the script ran {str(tools)[:300]}"
            else:
                assert tools == [argv], f"the tool got {str(tools)[:300]} for {str(argv)[:300]}"
            assert result.exit_code != 0 or kind == "truenas"  # CT 999999 does not exist: nothing changed
            assert not CANARY.exists(), f"the canary appeared after {value[:200]!r}"

    one()
    figures.add("injection.ssh.tried", tried[0])
    figures.add("injection.ssh.delivered", tried[0] - refused[0])
    figures.add("injection.canary", int(CANARY.exists()))


# ---------------------------------------------------------------- whole creates

def _valid(value: str, field: str) -> bool:
    raw = _stack_with(value, field, {"name": "pve1", "address": "127.0.0.1", "port": 22})
    try:
        load(STACK, raw, project_dir=str(REPO))
    except ConfigError:
        return False
    return True


def _stack_with(value: str, field: str, host: dict) -> dict:
    raw = base_stack()
    app = raw["apps"]["app"]
    if field == "description":
        app["description"] = value
    elif field == "env":
        app["env"]["HF_VALUE"] = value
    elif field == "volume":
        app["volumes"] = [{"path": value, "size": 1}]
    elif field == "entrypoint":
        app["entrypoint"] = value
    app["deleteData"] = True
    return raw


@pytest.fixture(scope="module")
def template(security_fleet):
    host = security_fleet["pve2"]
    props = {"host": target(host), "image": "docker.io/library/nginx:1.27",
             "pull_ref": "docker.io/library/nginx:1.27", "storage": "local"}
    outs = OciTemplateProvider().create(props).outs
    yield outs["volid"]
    OciTemplateProvider().delete("", outs)


@pytest.mark.parametrize("field", ["description", "env", "volume", "entrypoint"])
def test_a_ct_created_with_hostile_values_holds_them_byte_for_byte(security_fleet, template, field):
    host = security_fleet["pve2"]
    done = [0]

    @settings(max_examples=CREATES, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=(Phase.explicit, Phase.generate))  # no shrinking: each example is a real CT
    @given(st.one_of(hostile(sizes=(2_000,)), st.sampled_from([
        "it's \"quoted\" $(touch {c}) `touch {c}`; touch {c} & | > {c}".replace("{c}", str(CANARY)),
        "/data/$(touch {c})/x y".replace("{c}", str(CANARY)),
    ])).filter(lambda v: _valid(v, field)))
    def one(value):
        raw = _stack_with(value, field, {})
        raw["hosts"]["pve1"].update(address=host.address, port=host.port, hostKey=host.host_key,
                                    keyFile=host.client_key)
        stack, catalog = load(STACK, raw, project_dir=str(REPO))
        plan = make_plan(STACK, stack, catalog, project_dir=str(REPO))
        secret = value if not re.search(r"[\x00-\x1f\x7f]", value) else "fixed $(touch x)"
        props = {**plan.cts[0].props, "template": template, "secret_env": {"HF_SECRET": secret}}
        props["host"]["name"] = host.name
        log = HostLog(host)
        provider = ProxmoxCTProvider()
        created = provider.create(props)
        vmid = created.outs["vmid"]
        received, sent = log.commands(), log.sent()  # before this test's own ssh_run below
        try:
            assert sent == len(received), "the host ran commands the transport did not send"
            create = next(t for t in log.tools() if t[:2] == ["pct", "create"])
            assert create[create.index("--hostname") + 1] == "app"
            rc, out, err = ssh_run(host, ["pct", "config", str(vmid)])
            assert rc == 0, err
            conf = pct.parse_config(out)
            env = pct.env_dict(conf.get("env", []))
            assert env["HF_SECRET"] == secret, "the secret env value changed on its way"
            if field == "description":
                assert value in conf["description"]
                assert not value or create[create.index("--description") + 1].endswith("\n" + value)
            elif field == "env":
                assert env["HF_VALUE"] == value
            elif field == "volume":
                norm = value.rstrip("/") or "/"
                assert any(v.endswith(f",mp={norm},size=1G") or f",mp={norm}," in v + ","
                           for k, v in conf.items() if re.fullmatch(r"mp\d+", k)), conf
            elif field == "entrypoint" and value:
                assert conf.get("entrypoint") == value
            if field == "env" and len(value) > 12:
                assert value not in "\n".join(received), "an env value on a command line"
        finally:
            provider.delete(created.id, created.outs)
        rc, out, _ = ssh_run(host, ["pct", "list"])
        assert str(vmid) not in out.split(), "the CT was not deleted"
        assert not CANARY.exists()
        done[0] += 1

    one()
    figures.add("injection.ssh.tried", done[0])
    figures.add("injection.ssh.delivered", done[0])
