"""The transport's pure parts: quoting, targets, pinned keys and known_hosts checks.

No processes and no sockets: keys are fixed public keys, known_hosts files are temp files.
"""

from __future__ import annotations

import base64
import pickle
import re
import shlex
from pathlib import Path

import paramiko
import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.transport import Result, SshTarget, TransportError, describe, to_command_line
from providers.transport.hostkeys import fingerprint, parse_pinned, prefer_expected_key_types, verify

# Public keys made with ssh-keygen, with the fingerprints `ssh-keygen -lf` printed for them.
ED_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILk+ktnobhr5ifv5vRx9wwuL6RuRiw73LFHeYGoOLq/J"
ED_A_FP = "SHA256:gR3NBznNnDD6S1afxIzOCILHktyUOYIAs+tgwr7xJ94"
ED_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIARUcEogoIHQL+gV9Vzjosr1Caz86FOIhza+Z1qvIe4q"
ED_B_FP = "SHA256:8lECAwUJZHT8rfZQPRO+zKVOP3Oq021olj6L41ukQP4"
ECDSA = ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOLIlLGljcxye3Yw"
         "ulvL60FIeAzHW0xbhjO3ZjtECehMigmMTq1uNoMI5L5F9EGuiALZO4E5SMIQ2ocnd19rxRw=")
ECDSA_FP = "SHA256:iXndWKrGmYX6/ZzQR5WTgPaPZVCTbRBOD2WpRv6wpcw"


def pkey(line: str) -> paramiko.PKey:
    kind, blob = line.split()[:2]
    return paramiko.PKey.from_type_string(kind, base64.b64decode(blob))


def target(**fields) -> SshTarget:
    return SshTarget(**{"name": "pve1", "address": "127.0.0.1", "port": 2222, **fields})


# ---------------------------------------------------------------- quoting

def test_quoting_keeps_each_argument_whole():
    argv = ["printf", "%s\\n", "it's", "a b", "$(id)", "`id`", "a;b", "--", "x\ny", "日本", ""]
    line = to_command_line(argv)
    assert shlex.split(line) == argv
    assert "$(id)" not in line.replace("'$(id)'", "")


@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")),
                min_size=1, max_size=6))
def test_quoting_round_trips_any_text(argv):
    assert shlex.split(to_command_line(argv)) == argv


@pytest.mark.parametrize("argv, error, match", [
    ([], ValueError, "empty"),
    (["echo", "a\0b"], ValueError, "NUL"),
    (["echo", b"bytes"], TypeError, "str"),
    (["echo", 3], TypeError, "str"),
    (["echo", "\udcff"], ValueError, "UTF-8"),
])
def test_quoting_refuses_what_no_command_line_can_carry(argv, error, match):
    with pytest.raises(error, match=match):
        to_command_line(argv)


def test_describe_names_only_the_first_words():
    assert describe(["pct", "set", "100", "--env", "TOKEN=s3cret"]) == "pct set 100 ..."
    assert describe(["true"]) == "true"


# ---------------------------------------------------------------- targets

def test_target_from_config_numbers_arrive_as_floats():
    t = SshTarget.from_dict({"name": "pve1", "address": "127.0.0.1", "port": 2222.0,
                             "max_channels": 4.0, "host_key": None, "unrelated": 1})
    assert (t.port, t.max_channels, t.host_key, t.user) == (2222, 4, None, "root")
    assert isinstance(t.port, int) and isinstance(t.max_channels, int)


def test_target_round_trips_and_pickles_without_secrets():
    t = target(host_key=ED_A, key_file="/k", known_hosts="/kh")
    assert SshTarget.from_dict(t.to_dict()) == t
    assert pickle.loads(pickle.dumps(t)) == t
    assert "host_key" not in target().to_dict()


def test_targets_share_a_pool_entry_by_address_port_user():
    assert target(name="a").pool_key == target(name="b", host_key=ED_A).pool_key
    assert target(user="admin").pool_key != target().pool_key


@pytest.mark.parametrize("fields, match", [
    ({"port": 0}, "port"), ({"port": 70000}, "port"), ({"max_channels": 0}, "max_channels"),
])
def test_target_refuses_impossible_values(fields, match):
    with pytest.raises(ValueError, match=match):
        target(**fields)


def test_result_ok_only_on_zero():
    assert Result("", "", 0).ok and not Result("", "", 1).ok and not Result("", "", -1).ok


def test_transport_error_starts_with_the_host():
    err = TransportError("nas1", "timed out")
    assert str(err) == "host nas1: timed out" and err.host == "nas1" and err.reason == "timed out"


# ---------------------------------------------------------------- pinned keys

def test_fingerprints_match_ssh_keygen():
    assert fingerprint(pkey(ED_A)) == ED_A_FP
    assert fingerprint(pkey(ECDSA)) == ECDSA_FP


def test_parse_pinned_accepts_a_comment_and_refuses_garbage():
    kind, blob = parse_pinned(ED_A + " root@pve1")
    assert kind == "ssh-ed25519" and blob == pkey(ED_A).asbytes()
    for bad, match in (("ssh-ed25519", "looks like"), ("ssh-ed25519 !!notbase64", "base64"),
                       ("ssh-rsa " + ED_A.split()[1], "not a ssh-rsa key")):
        with pytest.raises(ValueError, match=match):
            parse_pinned(bad)


def test_verify_pinned_key():
    verify(target(host_key=ED_A), pkey(ED_A))
    with pytest.raises(TransportError) as err:
        verify(target(host_key=ED_B), pkey(ED_A))
    message = str(err.value)
    # both fingerprints, as docs/security.md promises: what the server offered and what is pinned
    assert ED_A_FP in message and f'hostKey: "{ED_A}"' in message and f"pinned hostKey is ssh-ed25519 {ED_B_FP}" in message


def test_verify_invalid_pinned_key_is_a_transport_error_naming_hostkey():
    with pytest.raises(TransportError, match="hostKey is not valid"):
        verify(target(host_key="ssh-ed25519"), pkey(ED_A))


# ---------------------------------------------------------------- known_hosts

def test_known_hosts_bracketed_plain_and_hashed(tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:2222 {ED_A}\n")
    verify(target(known_hosts=str(kh)), pkey(ED_A))

    hashed = paramiko.HostKeys.hash_host("[127.0.0.1]:2222")
    kh.write_text(f"{hashed} {ED_A}\n")
    verify(target(known_hosts=str(kh)), pkey(ED_A))

    kh.write_text(f"127.0.0.1 {ED_A}\n")          # port 22 hosts are listed bare
    verify(target(port=22, known_hosts=str(kh)), pkey(ED_A))
    with pytest.raises(TransportError, match="unknown host key"):
        verify(target(known_hosts=str(kh)), pkey(ED_A))   # ... and only they


def test_known_hosts_changed_key_and_other_type_are_refused(tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:2222 {ED_B}\n")
    with pytest.raises(TransportError, match="changed") as err:
        verify(target(known_hosts=str(kh)), pkey(ED_A))
    assert ED_A_FP in str(err.value) and ED_B_FP in str(err.value)

    kh.write_text(f"[127.0.0.1]:2222 {ECDSA}\n")
    with pytest.raises(TransportError, match="changed"):
        verify(target(known_hosts=str(kh)), pkey(ED_A))


def test_unknown_host_is_never_trusted(tmp_path):
    for path in (tmp_path / "absent", tmp_path / "empty"):
        if path.name == "empty":
            path.write_text("")
        with pytest.raises(TransportError, match="unknown host key") as err:
            verify(target(known_hosts=str(path)), pkey(ED_A))
        assert ED_A_FP in str(err.value) and f'hostKey: "{ED_A}"' in str(err.value)
    assert (tmp_path / "empty").read_text() == ""


class _Options:
    """Stands in for paramiko's SecurityOptions, which needs a live Transport."""

    def __init__(self):
        self.key_types = tuple(paramiko.Transport._preferred_keys)


def _asked_order(t: SshTarget) -> list[str]:
    options = _Options()
    prefer_expected_key_types(options, t)
    return list(options.key_types)


def test_the_expected_key_type_is_asked_for_first(tmp_path):
    assert _asked_order(target(host_key=ECDSA))[0] == "ecdsa-sha2-nistp256"
    rsa = "ssh-rsa " + base64.b64encode(b"\0\0\0\x07ssh-rsa" + bytes(16)).decode()
    assert _asked_order(target(host_key=rsa))[:3] == ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:2222 {ECDSA}\n")
    assert _asked_order(target(known_hosts=str(kh)))[0] == "ecdsa-sha2-nistp256"
    # Nothing known: paramiko's own order, and every algorithm is still offered.
    assert _asked_order(target(known_hosts=str(tmp_path / "absent"))) == list(_Options().key_types)
    assert sorted(_asked_order(target(host_key=ECDSA))) == sorted(_Options().key_types)


# ---------------------------------------------------------------- policy

def test_no_trust_on_first_use_policy_anywhere_in_the_transport():
    folder = Path(__file__).resolve().parents[2] / "providers" / "transport"
    source = "".join(p.read_text() for p in folder.glob("*.py"))
    assert not re.search(r"AutoAddPolicy|WarningPolicy|MissingHostKeyPolicy|set_missing_host_key_policy", source)
