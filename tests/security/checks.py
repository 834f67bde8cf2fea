"""What must hold for every argv a provider sent, once a real shell has parsed it.

1. The command line the transport makes runs exactly that argv (for `sh -c SCRIPT`, exactly
   that script), byte for byte.
2. Inside a script, every command that ran was written in it by `script.q()`: its quoted form
   is a literal part of the script. So no value split into more words, merged with its
   neighbours or ran as a command of its own.
3. No file appeared (the canary, or anything a redirection would have made).
4. Secrets (env values, registry passwords, SSH keys) are on no command line at all.
Field-specific expectations (the value arrives whole, at its option) are checked by the
caller with `calls_of`.
"""

from __future__ import annotations

import os
from typing import Iterable

from providers.hosts.script import q
from providers.transport import to_command_line

from .hostile import canary
from .shellsim import MAX_ARG_BYTES, ShellSim

# Commands whose arguments the scripts build from shell variables ("$tmp", "$path", "$holder").
_DYNAMIC = {"mv", "stat", "basename", "head", "test"}  # test: the preflight compares "$bad", "$owner"


def _as_written(call: list) -> str:
    """The call as a script writes it: quoted, except the scripts' own globs over /etc/pve."""
    return " ".join(a if a.startswith("/etc/pve/lxc/*") else q([a]) for a in call)


def _inner_ok(call: list, script_text: str) -> bool:
    if q(call) in script_text or _as_written(call) in script_text:
        return True
    tool = call[0]
    if tool in _DYNAMIC:
        return True
    if tool == "rm" and call[:2] == ["rm", "-f"] and (".tmp." in call[-1] or ".homefleet-" in call[-1]):
        return True  # the EXIT traps' `rm -f "$tmp"` and auth-file removal
    if tool == "skopeo" and call[:2] == ["skopeo", "copy"] and call[-1].startswith("oci-archive:"):
        return q(call[:-1]) in script_text
    if call[:2] == ["pvesh", "get"] and len(call) > 2 and call[2].count("/") >= 3 and call[2].startswith("/nodes/"):
        # `pvesh get "/nodes/$node/storage/"<storage>"/content" ...`: the node is the host's own name
        tail = call[2].split("/", 3)[3]
        return ('"/nodes/$node/' in script_text and all(q([part]) in script_text for part in tail.split("/"))
                and (not call[3:] or q(call[3:]) in script_text))
    if tool == "curl" and call[-1].startswith("http://"):
        # the health probe: `curl ... "http://$ip:<port>"<path>`, the CT's address read on the host
        scheme, _, rest = call[-1].partition("://")
        port_path = rest.split(":", 1)[1] if ":" in rest else ""
        port, _, path = port_path.partition("/")
        forms = [q(call[:-1]) + f' "http://$ip:{port}"' + q(["/" + path])]
        if path == "":
            forms.append(q(call[:-1]) + f' "http://$ip:{port}/"')
        return any(form in script_text for form in forms)
    for i in range(1, len(call)):  # one word from the script's "$holder" (the park script's target)
        if (q(call[:i]) + ' "$holder"' + (" " + q(call[i + 1:]) if call[i + 1:] else "")) in script_text:
            return True
    return False


def command_lines(cases: Iterable) -> list:
    lines = []
    for case in cases:
        for sent in case.sent:
            line = to_command_line(sent.argv)
            assert len(line.encode()) < MAX_ARG_BYTES, (
                f"{case.what}: a {len(line.encode())}-byte command line reached the transport "
                f"(Linux refuses an exec argument over {MAX_ARG_BYTES} bytes; validation must refuse "
                f"such a value): {str(sent.argv)[:200]}")
            lines.append(line)
    return lines


def verify(cases: list, shell: ShellSim) -> list:
    """Run every accepted case's argvs through the shell; assert 1-4; -> calls per case."""
    accepted = [c for c in cases if c.rejected is None]
    outcomes = iter(shell.run(command_lines(accepted)))
    per_case = []
    for case in accepted:
        calls = []
        for sent in case.sent:
            outcome = next(outcomes)
            first = outcome.calls[0] if outcome.calls else None
            assert first == sent.argv, (
                f"{case.what} {case.value[:200]!r}: the shell ran {str(first)[:300]} for {str(sent.argv)[:300]}")
            if sent.argv[:2] == ["sh", "-c"]:
                for call in outcome.calls[1:]:
                    assert _inner_ok(call, sent.argv[2]), (
                        f"{case.what} {case.value[:200]!r}: the script ran {str(call)[:300]}, "
                        f"which it does not contain as a quoted command")
            elif len(outcome.calls) != 1:
                raise AssertionError(f"{case.what} {case.value[:200]!r}: {str(sent.argv)[:200]} ran {str(outcome.calls[1:])[:300]}")
            assert not outcome.leftovers, f"a command line left files behind: {outcome.leftovers} ({case.what})"
            calls += outcome.calls
        assert not os.path.exists(canary()), f"the canary exists after {case.what} {case.value[:200]!r}"
        for secret in case.secrets:
            for sent in case.sent:
                assert secret not in to_command_line(sent.argv), (
                    f"{case.what}: a secret value is on the command line of {str(sent.argv)[:200]}")
        for secret in case.hidden:
            assert not any(secret in line for line in case.logs), f"{case.what}: a secret value in a log line"
            assert not any(secret in str(out) for out in case.outputs), f"{case.what}: a secret value in outputs"
        per_case.append((case, calls))
    return per_case


def calls_of(calls: list, *head: str) -> list:
    return [c for c in calls if c[:len(head)] == list(head)]


def option(call: list, name: str):
    """The value after `--name` in a pct call, or None."""
    flag = f"--{name}"
    return call[call.index(flag) + 1] if flag in call[:-1] else None
