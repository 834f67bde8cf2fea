"""The SSH transport against real sshd (the simulated hosts): one pooled connection per
host, reconnects, host keys, authentication, timeouts, results, uploads and quoting.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers import transport
from providers.transport import TransportError, pool, put, run, set_private_key
from sim import procs
from sim.testing import commands, set_faults

from .fswatch import ModeWatcher
from .helpers import (accepted_logins, error_chain_text, host_stats, ssh_keygen_fingerprint,
                      target_for)

MAY_OR_MAY_NOT = "may or may not have completed"


def in_threads(count: int, work) -> list:
    """Run work(i) in `count` threads released together; results (or exceptions) by index."""
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            results[i] = exc

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))
    peak = level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


TIMED_SLEEP = "date +%s.%N; sleep {}; date +%s.%N"


def interval(result) -> tuple[float, float]:
    start, end = result.stdout.split()
    return float(start), float(end)


# ---------------------------------------------------------------- one connection per host

def test_sequential_runs_share_one_connection(pve1):
    logins, before = len(accepted_logins(pve1)), host_stats("pve1")
    target = target_for(pve1)

    outputs = [run(target, ["echo", str(i)]).stdout for i in range(20)]

    assert outputs == [f"{i}\n" for i in range(20)]
    after = host_stats("pve1")
    assert after["connections_opened"] - before["connections_opened"] == 1
    assert after["commands"] - before["commands"] == 20
    assert len(accepted_logins(pve1)) - logins == 1


def test_eight_threads_share_one_connection_per_host(pve1, pve2):
    hosts = (pve1, pve2)
    logins = {h.name: len(accepted_logins(h)) for h in hosts}
    before = {h.name: host_stats(h.name) for h in hosts}
    targets = [target_for(h) for h in hosts]

    def work(i: int):
        timed = run(targets[i % 2], ["sh", "-c", TIMED_SLEEP.format(0.3)])
        names = [run(targets[(i + k) % 2], ["hostname"]).stdout.strip() for k in range(4)]
        return timed, names

    results = in_threads(8, work)

    for i, res in enumerate(results):
        assert not isinstance(res, BaseException), res
        assert res[1] == [hosts[(i + k) % 2].name for k in range(4)]
    for host in hosts:
        assert host_stats(host.name)["connections_opened"] - before[host.name]["connections_opened"] == 1
        assert len(accepted_logins(host)) - logins[host.name] == 1
        # The commands really ran side by side on that one connection.
        spans = [interval(res[0]) for i, res in enumerate(results) if hosts[i % 2] is host]
        assert peak_overlap(spans) >= 2


def test_channel_limit_is_respected(pve1):
    target = target_for(pve1, max_channels=3)
    before = host_stats("pve1")

    results = in_threads(9, lambda i: run(target, ["sh", "-c", TIMED_SLEEP.format(0.25)]))

    spans = [interval(r) for r in results]
    assert peak_overlap(spans) == 3
    assert host_stats("pve1")["connections_opened"] - before["connections_opened"] == 1


# ---------------------------------------------------------------- reconnects

def test_next_run_reconnects_after_the_connection_was_closed(pve1):
    target = target_for(pve1)
    logins, before = len(accepted_logins(pve1)), host_stats("pve1")
    assert run(target, ["echo", "one"]).stdout == "one\n"

    pool.get(target).transport.close()

    assert run(target, ["echo", "two"]).stdout == "two\n"
    assert host_stats("pve1")["connections_opened"] - before["connections_opened"] == 2
    assert len(accepted_logins(pve1)) - logins == 2


def test_many_threads_after_a_drop_open_exactly_one_new_connection(pve1):
    target = target_for(pve1)
    assert run(target, ["true"]).ok
    pool.get(target).transport.close()
    before = host_stats("pve1")

    results = in_threads(8, lambda i: run(target, ["echo", str(i)]))

    assert [r.stdout for r in results] == [f"{i}\n" for i in range(8)]
    assert host_stats("pve1")["connections_opened"] - before["connections_opened"] == 1


def test_drop_fails_in_flight_commands_once_and_the_next_run_reconnects(pve1):
    target = target_for(pve1)
    before = host_stats("pve1")
    assert run(target, ["true"]).ok
    set_faults(pve1, [{"match": "drop-me", "action": "drop", "times": 1}])

    bystander: dict = {}

    def long_command() -> None:
        started = time.monotonic()
        try:
            bystander["result"] = run(target, ["sleep", "3"])
        except TransportError as exc:
            bystander["error"] = exc
        bystander["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=long_command)
    thread.start()
    deadline = time.monotonic() + 5
    while not any(c["command"] == "LC_ALL=C sleep 3" for c in commands(pve1)):
        assert time.monotonic() < deadline, "sleep 3 never reached the host"
        time.sleep(0.01)

    with pytest.raises(TransportError) as dropped:
        run(target, ["echo", "drop-me"])
    thread.join(10)

    assert dropped.value.host == "pve1" and MAY_OR_MAY_NOT in str(dropped.value)
    # The other command on the same connection died with it, and said so at once.
    assert "error" in bystander, bystander
    assert MAY_OR_MAY_NOT in str(bystander["error"]) and bystander["seconds"] < 2.5
    # Nothing was silently re-run.
    sent = [c["command"] for c in commands(pve1)]
    assert sent.count("LC_ALL=C echo drop-me") == 1 and sent.count("LC_ALL=C sleep 3") == 1

    assert run(target, ["echo", "back"]).stdout == "back\n"
    assert host_stats("pve1")["connections_opened"] - before["connections_opened"] == 2


def test_sftp_upload_after_a_drop_reconnects(pve1, tmp_path):
    target = target_for(pve1)
    set_faults(pve1, [{"match": "drop-me", "action": "drop", "times": 1}])
    with pytest.raises(TransportError):
        run(target, ["echo", "drop-me"])

    put(target, b"after the drop\n", str(tmp_path / "f"), 0o600)

    assert (tmp_path / "f").read_bytes() == b"after the drop\n"


# ---------------------------------------------------------------- host keys

def test_pinned_host_key_is_accepted(pve1):
    assert run(target_for(pve1), ["hostname"]).stdout == "pve1\n"


def test_wrong_pinned_key_is_refused_with_the_offered_fingerprint(pve1, sim_hosts):
    logins = len(accepted_logins(pve1))
    target = target_for(pve1, host_key=sim_hosts["pve2"].host_key)

    with pytest.raises(TransportError) as err:
        run(target, ["true"])

    message = str(err.value)
    assert message.startswith("host pve1:") and "mismatch" in message
    assert ssh_keygen_fingerprint(pve1.state / "ssh" / "ssh_host_ed25519_key.pub") in message
    assert f'hostKey: "{pve1.host_key}"' in message
    assert len(accepted_logins(pve1)) == logins   # refused before logging in


def test_wrong_pinned_key_is_refused_even_when_a_connection_is_pooled(pve1, sim_hosts):
    assert run(target_for(pve1), ["true"]).ok
    with pytest.raises(TransportError, match="mismatch"):
        run(target_for(pve1, host_key=sim_hosts["pve2"].host_key), ["true"])


def test_unknown_host_key_is_refused_never_trusted_on_first_use(pve1, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    for content in (None, ""):                  # no file, then an empty one
        if content is not None:
            known_hosts.write_text(content)
        target = target_for(pve1, host_key=None, known_hosts=str(known_hosts))
        with pytest.raises(TransportError) as err:
            run(target, ["true"])
        message = str(err.value)
        assert "unknown host key" in message
        assert ssh_keygen_fingerprint(pve1.state / "ssh" / "ssh_host_ed25519_key.pub") in message
        assert f'hostKey: "{pve1.host_key}"' in message
    assert not known_hosts.read_text()          # nothing was added


def test_known_hosts_entry_is_accepted_plain_and_hashed(pve1, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{pve1.address}]:{pve1.port} {pve1.host_key}\n")
    target = target_for(pve1, host_key=None, known_hosts=str(known_hosts))
    assert run(target, ["hostname"]).stdout == "pve1\n"

    transport.close_all()
    subprocess.run(["ssh-keygen", "-H", "-f", str(known_hosts)], check=True, capture_output=True)
    assert str(pve1.port) not in known_hosts.read_text()
    assert run(target, ["hostname"]).stdout == "pve1\n"


def test_known_hosts_with_a_changed_key_is_refused(pve1, sim_hosts, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{pve1.address}]:{pve1.port} {sim_hosts['pve2'].host_key}\n")
    target = target_for(pve1, host_key=None, known_hosts=str(known_hosts))

    with pytest.raises(TransportError) as err:
        run(target, ["true"])

    message = str(err.value)
    assert "changed" in message
    assert ssh_keygen_fingerprint(pve1.state / "ssh" / "ssh_host_ed25519_key.pub") in message
    assert ssh_keygen_fingerprint(sim_hosts["pve2"].state / "ssh" / "ssh_host_ed25519_key.pub") in message


@pytest.fixture
def stock_sshd(sim_hosts, tmp_path, fresh_pool, no_agent):
    """A real sshd shaped like a stock host: an ed25519 and an ECDSA host key, and few
    sessions per connection (MaxSessions 2 here; OpenSSH's default is 10).

    Whatever is asked, it runs `sleep 0.3; echo stock`. Yields (port, {type: pub line}).
    """
    keys = {}
    for kind in ("ed25519", "ecdsa"):
        path = tmp_path / f"host_{kind}"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)],
                       check=True, stdin=subprocess.DEVNULL)
        keys[kind] = " ".join(Path(f"{path}.pub").read_text().split()[:2])
    client_pub = Path(sim_hosts.client_key + ".pub").read_text()
    (tmp_path / "authorized_keys").write_text(client_pub)
    port = procs.free_port()
    config = tmp_path / "sshd_config"
    config.write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {tmp_path / 'host_ed25519'}
HostKey {tmp_path / 'host_ecdsa'}
PidFile {tmp_path / 'sshd.pid'}
AuthorizedKeysFile {tmp_path / 'authorized_keys'}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 2
ForceCommand sleep 0.3; echo stock
""")
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(tmp_path / "sshd.log")],
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "sshd did not start"
                time.sleep(0.02)
        yield port, keys
    finally:
        transport.close_all()
        proc.terminate()
        proc.wait(10)


def test_a_pinned_key_of_any_type_the_host_has_is_negotiated(stock_sshd, sim_hosts, tmp_path):
    port, keys = stock_sshd
    base = dict(name="stock", address="127.0.0.1", port=port, key_file=sim_hosts.client_key)
    for kind, line in keys.items():
        transport.close_all()
        target = transport.SshTarget(host_key=line, **base)
        assert run(target, ["true"]).stdout == "stock\n", kind

    transport.close_all()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {keys['ecdsa']}\n")
    assert run(transport.SshTarget(known_hosts=str(known_hosts), **base), ["true"]).ok


def test_a_host_refusing_more_channels_fails_only_the_extra_commands(stock_sshd, sim_hosts):
    port, keys = stock_sshd
    target = transport.SshTarget(name="stock", address="127.0.0.1", port=port,
                                 host_key=keys["ed25519"], key_file=sim_hosts.client_key,
                                 max_channels=4)            # more than the host's MaxSessions 2
    before = host_stats("stock")

    results = in_threads(4, lambda i: run(target, ["true"]))

    refused = [r for r in results if isinstance(r, TransportError)]
    assert len(refused) == 2 and all("refused an SSH channel" in str(r) for r in refused)
    assert [r.stdout for r in results if not isinstance(r, BaseException)] == ["stock\n"] * 2
    # The connection (and the commands on it) survived the refusals.
    assert host_stats("stock")["connections_opened"] - before["connections_opened"] == 1


# ---------------------------------------------------------------- authentication

def _accepted_key_fingerprint(host) -> str:
    return accepted_logins(host)[-1].split()[-1]


def test_key_file_logs_in_with_that_key(pve1):
    assert run(target_for(pve1), ["true"]).ok
    assert _accepted_key_fingerprint(pve1) == ssh_keygen_fingerprint(pve1.client_key + ".pub")


def test_secret_private_key_logs_in_without_a_key_file(pve1):
    set_private_key(Path(pve1.client_key).read_text())
    assert run(target_for(pve1, key_file=None), ["hostname"]).stdout == "pve1\n"
    assert _accepted_key_fingerprint(pve1) == ssh_keygen_fingerprint(pve1.client_key + ".pub")


def _key_fragments(text: str) -> list[str]:
    """Pieces of a key's body long enough to be recognisable in a message."""
    body = "".join(line for line in text.splitlines() if "-----" not in line)
    return [body[i:i + 12] for i in range(0, len(body) - 12, 12)]


def test_secret_key_text_never_appears_in_errors(pve1, tmp_path):
    garbage = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
               + base64.b64encode(b"TOPSECRET-" * 20).decode() + "\n"
               "-----END OPENSSH PRIVATE KEY-----\n")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")],
                   check=True, stdin=subprocess.DEVNULL)
    unauthorized = (tmp_path / "other").read_text()

    for secret, expected in ((garbage, "cannot load the SSH key"),
                             (unauthorized, "no offered key was accepted")):
        transport.close_all()
        set_private_key(secret)
        with pytest.raises(TransportError) as err:
            run(target_for(pve1, key_file=None), ["true"])
        assert expected in str(err.value)
        text = error_chain_text(err.value)
        assert "TOPSECRET" not in text
        assert not [f for f in _key_fragments(secret) if f in text]


def test_no_key_at_all_is_a_clear_error(pve1):
    logins = len(accepted_logins(pve1))
    with pytest.raises(TransportError) as err:
        run(target_for(pve1, key_file=None), ["true"])
    message = str(err.value)
    assert message.startswith("host pve1:") and "no SSH key" in message
    assert "homefleet:sshKey" in message and "ssh-agent" in message
    assert len(accepted_logins(pve1)) == logins


def test_missing_key_file_names_the_file(pve1, tmp_path):
    missing = tmp_path / "no_such_key"
    with pytest.raises(TransportError, match="cannot load the SSH key") as err:
        run(target_for(pve1, key_file=str(missing)), ["true"])
    assert str(missing) in str(err.value)


def test_ssh_agent_logs_in_without_a_key_file(pve1, ssh_agent):
    subprocess.run(["ssh-add", pve1.client_key], env=ssh_agent, check=True, capture_output=True)

    assert run(target_for(pve1, key_file=None), ["hostname"]).stdout == "pve1\n"
    assert _accepted_key_fingerprint(pve1) == ssh_keygen_fingerprint(pve1.client_key + ".pub")


# ---------------------------------------------------------------- timeouts and unreachable hosts

def test_command_timeout_names_the_host_and_keeps_the_connection(pve1):
    target = target_for(pve1)
    assert run(target, ["true"]).ok
    before = host_stats("pve1")

    started = time.monotonic()
    with pytest.raises(TransportError) as err:
        run(target, ["sleep", "5"], timeout=0.5)
    elapsed = time.monotonic() - started

    assert 0.4 < elapsed < 1.2
    assert err.value.host == "pve1" and "timed out" in str(err.value)
    assert run(target, ["echo", "still here"]).stdout == "still here\n"
    assert host_stats("pve1")["connections_opened"] == before["connections_opened"]


def test_connection_refused_names_the_host(fresh_pool):
    port = procs.free_port()                    # bound, then closed: nothing listens
    target = transport.SshTarget(name="ghost", address="127.0.0.1", port=port, host_key=None)
    started = time.monotonic()
    with pytest.raises(TransportError) as err:
        run(target, ["true"], timeout=5)
    assert time.monotonic() - started < 1
    assert err.value.host == "ghost" and str(err.value).startswith("host ghost:")
    assert f"127.0.0.1:{port}" in str(err.value) and "refused" in str(err.value)


@pytest.fixture
def silent_listener():
    """A loopback port whose listener never accepts and whose backlog is full: new
    connections get no answer at all, as with a host that is down."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    for _ in range(4):                          # fill the accept queue
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(server.getsockname())
        fillers.append(filler)
    time.sleep(0.05)
    yield server.getsockname()[1]
    for sock in fillers + [server]:
        sock.close()


def test_unreachable_host_times_out_naming_the_host(fresh_pool, silent_listener):
    target = transport.SshTarget(name="offline", address="127.0.0.1", port=silent_listener)
    started = time.monotonic()
    with pytest.raises(TransportError) as err:
        run(target, ["true"], timeout=1)
    elapsed = time.monotonic() - started
    assert elapsed < 2
    assert err.value.host == "offline" and f"127.0.0.1:{silent_listener}" in str(err.value)


@pytest.fixture
def mute_server():
    """A loopback port that accepts connections and then never says a word (no SSH banner)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for sock in accepted + [server]:
        sock.close()


def test_a_host_that_never_speaks_ssh_times_out(fresh_pool, mute_server):
    target = transport.SshTarget(name="mute", address="127.0.0.1", port=mute_server)
    started = time.monotonic()
    with pytest.raises(TransportError) as err:
        run(target, ["true"], timeout=1)
    assert time.monotonic() - started < 2
    assert err.value.host == "mute"


# ---------------------------------------------------------------- results

def test_nonzero_exit_and_stderr_are_a_result_not_an_exception(pve1):
    result = run(target_for(pve1), ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.stdout, result.stderr, result.exit_code, result.ok) == ("out\n", "err\n", 3, False)

    missing = run(target_for(pve1), ["no-such-tool-here"])
    assert missing.exit_code == 127 and "not found" in missing.stderr


def test_a_command_killed_by_a_signal_is_a_failed_result(pve1):
    # The inner sh kills the remote shell itself: sshd reports exit-signal, not a status.
    result = run(target_for(pve1), ["sh", "-c", "kill -9 $PPID"])
    assert not result.ok and result.exit_code == -1


@pytest.fixture(scope="module")
def big_text_file(tmp_path_factory) -> tuple[Path, str]:
    """20 MB of text on this machine (the simulated hosts share its file system)."""
    path = tmp_path_factory.mktemp("big") / "big.txt"
    data = base64.b64encode(os.urandom(15_000_000))
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_large_output_arrives_complete(pve1, big_text_file):
    path, digest = big_text_file
    result = run(target_for(pve1), ["sh", "-c", 'head -c 20000000 "$1"; echo end >&2', "sh", str(path)])
    assert result.ok and result.stderr == "end\n"
    assert len(result.stdout) == 20_000_000
    assert hashlib.sha256(result.stdout.encode()).hexdigest() == digest


def test_output_is_never_cut_when_the_exit_status_comes_first(pve1, big_text_file):
    # sshd may send exit-status before the last of the output; the tail must still arrive.
    path, _ = big_text_file
    expected = path.read_bytes()[:1_000_000].decode()
    target = target_for(pve1)
    for _ in range(8):
        result = run(target, ["head", "-c", "1000000", str(path)])
        assert result.stdout == expected


def test_stdin_is_delivered_byte_for_byte(pve1):
    data = bytes(range(256)) * 512 + b"\x00\xff\xfe not utf-8 \xc3\x28 \x00"
    result = run(target_for(pve1), ["base64", "-w", "0"], stdin=data)
    assert result.ok and base64.b64decode(result.stdout) == data

    empty = run(target_for(pve1), ["wc", "-c"], stdin=b"")
    assert empty.stdout.strip() == "0"


def test_large_stdin_echoed_back_does_not_deadlock(pve1):
    # cat writes while it reads: the transport must read output while it sends input.
    data = base64.b64encode(os.urandom(6_000_000))
    outcome: dict = {}
    thread = threading.Thread(
        target=lambda: outcome.update(result=run(target_for(pve1), ["cat"], stdin=data, timeout=20)),
        daemon=True)
    thread.start()
    thread.join(15)
    assert not thread.is_alive(), "run() with large stdin and output hung"
    assert outcome["result"].stdout.encode() == data


# ---------------------------------------------------------------- uploads

def test_put_writes_exact_bytes_and_the_file_is_never_wider_than_0600(pve1, tmp_path):
    data = os.urandom(300_000) + b"\x00secret\x00"
    path = tmp_path / "secret.env"
    before = host_stats("pve1")

    with ModeWatcher(str(tmp_path)) as watch:
        put(target_for(pve1), data, str(path), 0o600)

    assert path.read_bytes() == data
    assert path.stat().st_mode & 0o7777 == 0o600
    modes = {mode for _, name, mode, _ in watch.seen if name == "secret.env"}
    assert modes == {0o600}, f"observed modes {sorted(oct(m) for m in modes)}"
    assert host_stats("pve1")["uploads"] - before["uploads"] == 1


def test_put_over_an_existing_wider_file_never_holds_new_bytes_while_wide(pve1, tmp_path):
    path = tmp_path / "token"
    path.write_bytes(b"old contents that are long\n")
    path.chmod(0o644)

    with ModeWatcher(str(tmp_path)) as watch:
        put(target_for(pve1), b"new", str(path), 0o600)

    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o7777 == 0o600
    # Opening truncates it while still 0644 (empty: harmless); no byte lands before the chmod.
    assert watch.seen, "the watcher saw nothing"
    assert not [e for e in watch.seen if e[1] == "token" and e[2] != 0o600 and e[3] > 0], watch.seen


def test_put_honours_other_modes(pve1, tmp_path):
    put(target_for(pve1), b"x", str(tmp_path / "f"), 0o640)
    assert (tmp_path / "f").stat().st_mode & 0o7777 == 0o640


def test_put_into_a_missing_folder_names_host_and_path(pve1, tmp_path):
    path = str(tmp_path / "missing" / "f")
    with pytest.raises(TransportError) as err:
        put(target_for(pve1), b"x", path)
    assert err.value.host == "pve1" and path in str(err.value)


# ---------------------------------------------------------------- quoting

HOSTILE = [
    "plain", "", " ", "two words", "it's", '"double"', "a;b", "a && b", "a | b", "$(touch {canary})",
    "`touch {canary}`", "$HOME", "${PATH}", "a\nb", "line\n", "tab\there", "cr\rhere", "back\\slash",
    "trailing\\", "*", "?", "[a]", "~", "~root", "!", "#hash", "-n", "--", "--help", "-e", ">out",
    "<in", "ünïcödé ✓ 日本語", "emoji 🎉", "'$'\\n'", "{a,b}", "%s", "%%",
]


def _args_seen_by_host(target, args: list[str]) -> list[str]:
    result = run(target, ["printf", "%s\\0", *args])
    assert result.ok, result.stderr
    return result.stdout.split("\0")[:-1]


def test_hostile_arguments_reach_the_host_as_one_argument_each(pve1, tmp_path):
    canary = tmp_path / "pwned"
    args = [a.replace("{canary}", str(canary)) for a in HOSTILE]
    assert _args_seen_by_host(target_for(pve1), args) == args
    assert not canary.exists()
    # The host was sent one command line, quoted once.
    assert commands(pve1)[-1]["command"] == "LC_ALL=C " + shlex.join(["printf", "%s\\0", *args])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                        max_size=20), min_size=1, max_size=5))
def test_any_text_argument_reaches_the_host_unchanged(sim_hosts, args):
    assert _args_seen_by_host(target_for(sim_hosts["pve1"]), args) == args


def test_nul_in_an_argument_is_refused_before_anything_is_sent(pve1):
    sent, before = len(commands(pve1)), host_stats("pve1")
    with pytest.raises(ValueError, match="NUL"):
        run(target_for(pve1), ["echo", "a\0b"])
    assert len(commands(pve1)) == sent
    assert host_stats("pve1") == before


def test_a_pinned_key_mismatch_shows_both_fingerprints(pve1, sim_hosts):
    """docs/security.md: a changed key is an error showing both fingerprints."""
    with pytest.raises(TransportError) as err:
        run(target_for(pve1, host_key=sim_hosts["pve2"].host_key), ["true"])
    message = str(err.value)
    assert ssh_keygen_fingerprint(pve1.state / "ssh" / "ssh_host_ed25519_key.pub") in message
    assert ssh_keygen_fingerprint(sim_hosts["pve2"].state / "ssh" / "ssh_host_ed25519_key.pub") in message


def test_known_hosts_markers_are_read_not_a_traceback(pve1, sim_hosts, tmp_path):
    """issue 18.11: paramiko.HostKeys raises on `@revoked`/`@cert-authority` lines."""
    known_hosts = tmp_path / "known_hosts"
    plain = f"[{pve1.address}]:{pve1.port} {pve1.host_key}\n"
    cert = f"@cert-authority *.example.net {sim_hosts['pve2'].host_key}\n"
    known_hosts.write_text(cert + plain)
    target = target_for(pve1, host_key=None, known_hosts=str(known_hosts))
    assert run(target, ["hostname"]).stdout == "pve1\n"  # a CA line beside a plain entry changes nothing

    transport.close_all()
    known_hosts.write_text(cert)
    with pytest.raises(TransportError) as err:
        run(target, ["true"])
    assert "unknown host key" in str(err.value) and "@cert-authority" in str(err.value)
    assert "does not check host certificates" in str(err.value)

    logins = len(accepted_logins(pve1))
    for pinned in (None, pve1.host_key):  # @revoked wins over known_hosts and over a pinned key
        transport.close_all()
        known_hosts.write_text(f"@revoked [{pve1.address}]:{pve1.port} {pve1.host_key}\n" + plain)
        with pytest.raises(TransportError) as err:
            run(target_for(pve1, host_key=pinned, known_hosts=str(known_hosts)), ["true"])
        assert "@revoked" in str(err.value) and ssh_keygen_fingerprint(
            pve1.state / "ssh" / "ssh_host_ed25519_key.pub") in str(err.value)
    assert len(accepted_logins(pve1)) == logins  # refused before logging in


def test_a_refused_login_counts_and_names_only_the_keys_it_tried(pve1, tmp_path):
    """issue 19.10: the error said "1 tried" while naming three sources."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")],
                   check=True, stdin=subprocess.DEVNULL)
    with pytest.raises(TransportError) as err:
        run(target_for(pve1, key_file=str(tmp_path / "other")), ["true"])
    message = str(err.value)
    assert f"1 key tried: keyFile {tmp_path / 'other'}; none from homefleet:sshKey, ssh-agent" in message
    assert "authorized_keys" in message
