"""One read of every homefleet CT per host: the script, its parser, the single-flight cache,
and (against a simulated host over real SSH) that it agrees with reading each CT alone."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from providers import hostcache
from providers.errors import HostCommandError
from providers.hosts import ctops, hostread, pct
from providers.transport import Result, SshTarget, run
from sim.testing import commands, ssh_run

MARK = "@@homefleet:section:{}@@"


def _stdout(listed, cts, failed=()):
    lines = [MARK.format("list"), json.dumps([{"vmid": v, "status": s, "type": "lxc"} for v, s in listed.items()])]
    for vmid, (config, ip) in cts.items():
        lines += [MARK.format(f"config:{vmid}"), config]
        if vmid in failed:
            lines.append(MARK.format(f"failed:{vmid}"))
        lines += [MARK.format(f"ip:{vmid}"), ip]
    return "\n".join(lines) + "\n"


CONF = ("arch: amd64\ndescription: managed-by%3A homefleet stack=s app=a%0A\nenv: PATH=/bin\x00TZ=UTC\n"
        "hostname: a\nmemory: 512\nmp0: /tank,mp=/tank\ntags: homefleet\nlxc.init.cwd: /\n")


# ---------------------------------------------------------------- the script (pure)

def test_script_lists_once_and_reads_only_cts_that_mention_homefleet():
    argv = hostread.read_all_script()
    assert argv[:2] == ["sh", "-c"]
    text = argv[2]
    assert text.count("pvesh get") == 1 and '"/nodes/$node/lxc" --output-format json || exit $?' in text
    assert "node=${node%%.*}" in text, "the node name is PVE's: the host name up to the first dot"
    loop = text[text.index("for conf in /etc/pve/lxc/*.conf"):]
    assert loop.index("grep -qsE 'homefleet|^lock: create$'") < loop.index("pct config"), \
        "foreign CTs never start pct (but a bare `lock: create` a cut restore leaves is read)"
    assert "case $vmid in ''|*[!0-9]*) continue" in loop


# ---------------------------------------------------------------- the parser (pure)

def test_parse_gives_readbacks_in_the_single_ct_shape():
    snap = hostread.parse(_stdout({101: "running", 102: "stopped", 103: "running"},
                                  {101: (CONF, "198.18.0.5\nfe80::1"), 102: (CONF, "")}))
    found, rb = snap.lookup(101)
    single = ctops.parse_readback("\n".join([MARK.format("config"), CONF, MARK.format("status"), "status: running",
                                             MARK.format("ip"), "198.18.0.5", "fe80::1"]))
    assert found == "found"
    assert {k: rb[k] for k in single} == single
    assert rb["config"]["env"] == ["PATH=/bin", "TZ=UTC"] and pct.owner_of(rb["config"]) == ("s", "a")
    assert snap.lookup(102) == ("found", {**snap.cts[102], "status": "stopped"})
    assert snap.lookup(102)[1]["ip"] is None
    assert snap.lookup(103) == ("gone", None), "listed but without our mark: not ours"
    assert snap.lookup(999) == ("gone", None)


def test_lookup_is_unsure_when_list_and_configs_disagree_or_pct_failed():
    stdout = _stdout({101: "running", 102: "running"}, {101: (CONF, ""), 102: ("", ""), 104: (CONF, ""), 105: ("", "")},
                     failed=(102, 105))
    snap = hostread.parse(stdout, "Configuration file 'nodes/pve1/lxc/105.conf' does not exist\n"
                                  "CT 102: got timeout\n")
    assert snap.lookup(104) == ("unsure", None), "a config without a status: created while the script ran"
    assert snap.lookup(102) == ("unsure", None), "pct config failed for another reason"
    assert snap.lookup(105) == ("gone", None), "destroyed between the list and pct config"


def test_parse_refuses_a_missing_list():
    with pytest.raises(ValueError, match="printed nothing"):
        hostread.parse(MARK.format("list") + "\n")


# ---------------------------------------------------------------- the cache (a counting runner)

TARGET = SshTarget(name="pveX", address="127.0.0.1", port=1)


@pytest.fixture
def fake_host(monkeypatch):
    calls = []
    state = {"stdout": _stdout({101: "running"}, {101: (CONF, "")}), "rc": 0, "delay": 0.2}

    def fake_run(target, argv, stdin=None, timeout=0):
        calls.append(argv)
        time.sleep(state["delay"])
        if argv != hostread.read_all_script():
            return Result(state["single"], "", 0)
        return Result(state["stdout"], "boom" if state["rc"] else "", state["rc"])

    monkeypatch.setattr(hostcache, "run", fake_run)
    hostcache.clear()
    yield calls, state
    hostcache.clear()


def test_concurrent_reads_of_one_host_cost_one_command(fake_host):
    calls, _ = fake_host
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: hostcache.ct(TARGET, 101), range(8)))
    assert len(calls) == 1
    assert all(r["status"] == "running" for r in results)
    assert hostcache.ct(TARGET, 101)["config"]["hostname"] == "a"
    assert len(calls) == 1, "a later read in the same run uses the snapshot"


def test_invalidate_and_ttl_make_the_next_read_go_to_the_host(fake_host, monkeypatch):
    calls, _ = fake_host
    hostcache.ct(TARGET, 101)
    hostcache.invalidate(TARGET)
    hostcache.ct(TARGET, 101)
    assert len(calls) == 2
    monkeypatch.setattr(hostcache, "TTL", 0.0)
    hostcache.ct(TARGET, 101)
    assert len(calls) == 3


def test_a_write_during_a_read_in_flight_is_not_hidden_by_it(fake_host):
    calls, _ = fake_host
    first = threading.Thread(target=hostcache.ct, args=(TARGET, 101))
    first.start()
    time.sleep(0.05)
    hostcache.invalidate(TARGET)
    hostcache.ct(TARGET, 101)
    first.join()
    assert len(calls) == 2


def test_a_failed_read_raises_for_every_waiter_and_is_not_cached(fake_host):
    calls, state = fake_host
    state["rc"] = 1
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(hostcache.ct, TARGET, 101) for _ in range(4)]
    for future in futures:
        with pytest.raises(HostCommandError, match="host pveX: reading the CTs"):
            future.result()
    assert len(calls) == 1
    state["rc"], state["delay"] = 0, 0
    assert hostcache.ct(TARGET, 101)["status"] == "running"
    assert len(calls) == 2


def test_unsure_falls_back_to_reading_the_ct_alone(fake_host):
    calls, state = fake_host
    state["stdout"] = _stdout({}, {101: (CONF, "")})
    state["single"] = "\n".join([MARK.format("config"), CONF, MARK.format("status"), "status: stopped"])
    assert hostcache.ct(TARGET, 101)["status"] == "stopped"
    assert len(calls) == 2 and calls[1] == ctops.read_script(101)


# ---------------------------------------------------------------- a simulated host, real SSH

def _target(host):
    return SshTarget(name=host.name, address=host.address, port=host.port, user=host.user,
                     host_key=host.host_key, key_file=host.client_key)


def _sh(host, argv):
    rc, out, err = ssh_run(host, argv, timeout=120)
    assert rc == 0, err
    return out


def test_one_command_reads_every_ct_as_single_reads_would(sim_hosts):
    host = sim_hosts["pve2"]
    archive = "/var/lib/vz/template/cache/hostread-alpine.tar"
    _sh(host, ["skopeo", "copy", "--quiet", "docker://docker.io/library/alpine:3.20", f"oci-archive:{archive}"])
    ours = {710: True, 711: False}
    for vmid, start in ours.items():
        _sh(host, ["pct", "create", str(vmid), "local:vztmpl/hostread-alpine.tar", "--rootfs", "local-zfs:1",
                   "--unprivileged", "1", "--ostype", "unmanaged", "--net0", "name=eth0,bridge=vmbr0,ip=dhcp",
                   "--tags", "homefleet", "--description", pct.marker_line("hr", f"app{vmid}")])
        if start:
            _sh(host, ["pct", "start", str(vmid)])
    _sh(host, ["pct", "create", "712", "local:vztmpl/hostread-alpine.tar", "--rootfs", "local-zfs:1",
               "--unprivileged", "1", "--ostype", "unmanaged", "--hostname", "foreign"])
    target = _target(host)
    try:
        single = {}
        for vmid in (710, 711):
            result = run(target, ctops.read_script(vmid))
            assert result.ok, result.stderr
            single[vmid] = ctops.parse_readback(result.stdout)
        hostcache.clear()
        before = len(commands(host))
        with ThreadPoolExecutor(4) as pool:
            got = dict(zip((710, 711, 712, 799), pool.map(lambda v: hostcache.ct(target, v), (710, 711, 712, 799))))
        assert len(commands(host)) - before == 1
        for vmid in (710, 711):
            assert got[vmid] == single[vmid]
        assert got[710]["status"] == "running" and got[711]["status"] == "stopped"
        assert got[710]["ip"] and got[711]["ip"] is None
        assert got[712] is None and got[799] is None
    finally:
        hostcache.clear()
        for vmid in (710, 711, 712):
            ssh_run(host, ["pct", "destroy", str(vmid), "--purge", "1", "--force", "1"])
        ssh_run(host, ["rm", "-f", archive])
